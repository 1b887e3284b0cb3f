/**
 * Ratings and aggregates in MySQL/MariaDB (tables `ratings` and
 * `rating_aggregates`, schema/rating). Every write changes ratings and the
 * affected aggregates in one transaction, so an aggregate always equals what the
 * stored ratings imply.
 */
import { SqlClient, SqlError } from "@effect/sql"
import {
  AggregatedRating,
  RankedRecord,
  type RankQuery,
  type RatingEvent,
  type RecordId
} from "@movieapp/contracts/Rating"
import * as Mysql from "@movieapp/platform/Mysql"
import { Effect, Layer, Option, Schedule, Schema } from "effect"
import { fileURLToPath } from "node:url"
import * as ChangeSet from "../domain/ChangeSet.js"
import * as Ranking from "../domain/Ranking.js"
import * as Redelivery from "../domain/Redelivery.js"
import type { StreamBatch } from "../ports/RatingEventSource.js"
import { RatingRepository, StorageRefused } from "../ports/RatingRepository.js"
import {
  aggregateParams,
  keyParams,
  markInserted,
  placeholders,
  ratingOf,
  ratingParams,
  statementChunks,
  whereKeys
} from "./internal/RatingStatements.js"

/** The rating service's migrations (and the table recording which ran). */
export const migrations = {
  directory: fileURLToPath(new URL("../../../../schema/rating", import.meta.url)),
  table: "rating_migrations"
} as const

const unavailable = Mysql.orUnavailable("rating storage")

// BIGINT columns arrive as numbers, or as strings when beyond 2^53.
const Count = Schema.Union(Schema.Number, Schema.NumberFromString)
const AggregateRow = Schema.Struct({ ratingsCount: Count, ratingsSum: Count })
const IdAggregateRow = Schema.Struct({ recordId: Schema.String, ...AggregateRow.fields })
interface RankedRow {
  readonly recordId: string
  readonly ratingsCount: number | string
  readonly ratingsSum: number | string
  readonly dampedScore: number
}
/**
 * The top of a record type's ranking, after a cursor: read from the ranking
 * index's top (or from the cursor down), covered by it, never sorted. Exported
 * for the test that checks exactly this statement's plan.
 */
export const rankedStatement = (
  sql: SqlClient.SqlClient,
  { after, limit, minCount, recordType }: RankQuery
) =>
  after === undefined
    ? sql<RankedRow>`SELECT record_id, ratings_count, ratings_sum, damped_score FROM rating_aggregates
        WHERE record_type = ${recordType} AND ratings_count >= ${minCount}
        ORDER BY damped_score DESC, record_id DESC LIMIT ${limit}`
    // The range on damped_score first, so the index is read from the cursor down.
    : sql<RankedRow>`SELECT record_id, ratings_count, ratings_sum, damped_score FROM rating_aggregates
        WHERE record_type = ${recordType} AND ratings_count >= ${minCount}
          AND damped_score <= ${after.score} AND (damped_score < ${after.score} OR record_id < ${after.recordId})
        ORDER BY damped_score DESC, record_id DESC LIMIT ${limit}`

const PriorRow = Schema.Struct({ priorWeight: Schema.Number, priorMean: Schema.Number })
const Position = Schema.Union(Schema.BigIntFromNumber, Schema.BigInt)
const CheckpointRow = Schema.Struct({ nextPosition: Position })

/**
 * Lock conflicts between concurrent batches, which InnoDB resolves by aborting
 * one (deadlock, lock wait timeout), and a key another transaction inserted after
 * this one found it absent (duplicate key): run the transaction again.
 */
const isTransient = (error: unknown) =>
  error instanceof SqlError.SqlError &&
  [1213, /* ER_LOCK_DEADLOCK */ 1205, /* ER_LOCK_WAIT_TIMEOUT */ 1062 /* ER_DUP_ENTRY */].includes(
    (error.cause as { errno?: number } | undefined)?.errno ?? 0
  )

/**
 * Errors by which the server refuses a value of a statement as sent: the same
 * events would be refused again, so they are not a reason to wait for the
 * database. Validation bounds every column, so each one means validation and
 * schema disagree; the events are refused rather than retried for ever.
 */
const refusals = new Map<number, string>([
  [1048, "a value is missing"], // ER_BAD_NULL_ERROR
  [1264, "a number is out of its column's range"], // ER_WARN_DATA_OUT_OF_RANGE
  [1366, "a string is not text its column can hold"], // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
  [1406, "a string is longer than its column"], // ER_DATA_TOO_LONG
  [3819, "a value breaks a CHECK constraint"], // MySQL: ER_CHECK_CONSTRAINT_VIOLATED
  [4025, "a value breaks a CHECK constraint"] // MariaDB: ER_CONSTRAINT_FAILED
])

const refusalOf = (error: unknown): string | undefined =>
  error instanceof SqlError.SqlError
    ? refusals.get((error.cause as { errno?: number } | undefined)?.errno ?? 0)
    : undefined

/**
 * The server returned a rating the batch did not send: it stored an id other
 * than the one sent (a character it could not hold, replaced). Thrown where rows
 * are matched to the batch, and turned into StorageRefused for the whole write.
 */
class ForeignRow extends Error {}

/** The damped mean of Ranking.dampedMean as a column expression, in doubles and in the same order. */
const scoreExpression = (prior: Ranking.Prior) =>
  `(${prior.weight.toExponential()} * ${prior.mean.toExponential()} + ratings_sum) / (${prior.weight.toExponential()} + ratings_count)`

/**
 * Makes the stored scores those of `prior`: when the database holds another
 * prior's, rewrites the generated column's expression, which rescores every
 * aggregate in one statement (a table copy, during which writes wait), and
 * records the prior. Instances of one deployment share a prior, so this runs
 * once, when a deployment changes it.
 */
const ensurePrior = (sql: SqlClient.SqlClient, prior: Ranking.Prior) =>
  Effect.gen(function*() {
    const rows = yield* sql`SELECT prior_weight, prior_mean FROM rating_ranking_prior WHERE id = 1`.pipe(
      Effect.flatMap(Schema.decodeUnknown(Schema.Array(PriorRow))),
      Effect.catchTag("ParseError", Effect.die)
    )
    const stored = rows[0]
    if (stored !== undefined && stored.priorWeight === prior.weight && stored.priorMean === prior.mean) return
    yield* sql.unsafe(`ALTER TABLE rating_aggregates MODIFY damped_score DOUBLE AS (${scoreExpression(prior)}) STORED`)
    yield* sql`REPLACE INTO rating_ranking_prior (id, prior_weight, prior_mean) VALUES (1, ${prior.weight}, ${prior.mean})`
    yield* Effect.logInfo("ranking rescored for a new prior").pipe(
      Effect.annotateLogs({ "ranking.prior.weight": prior.weight, "ranking.prior.mean": prior.mean })
    )
  })

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const server = yield* Mysql.MysqlServer
  const prior = yield* Ranking.RankingPrior
  yield* ensurePrior(sql, prior).pipe(
    Effect.orDieWith((error) => new Error(`cannot rescore the ranking for the configured prior: ${error.message}`))
  )
  // READ COMMITTED: locking reads take no gap locks, so concurrent batches over
  // different keys never wait for each other. Correctness does not rest on it
  // (see apply), only speed.
  const withTransaction = Mysql.withIsolation(sql, "READ COMMITTED")

  /** One transaction, run again when it lost a race with a concurrent one. */
  const transaction = <A>(effect: Effect.Effect<A, SqlError.SqlError>) =>
    effect.pipe(
      withTransaction,
      Effect.retry({
        while: isTransient,
        schedule: Schedule.exponential("5 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(10)))
      }),
      Effect.catchIf((error) => refusalOf(error) !== undefined, (error) => refused(refusalOf(error)!, error)),
      Effect.catchSomeDefect((defect) =>
        defect instanceof ForeignRow ? Option.some(refused(defect.message, defect)) : Option.none()
      ),
      unavailable
    )

  /** The events' refusal, the server's own words logged for operators. */
  const refused = (reason: string, cause: unknown) =>
    Effect.logWarning(
      "the database refused rating events",
      globalThis.String((cause as { cause?: unknown }).cause ?? cause)
    ).pipe(
      Effect.zipRight(Effect.fail(new StorageRefused({ reason: `the database refused them: ${reason}` })))
    )

  /** Statements over `rows`, built by `statement(chunk)` for each of their statementChunks, in order. */
  const inChunks = <T>(
    rows: ReadonlyArray<T>,
    statement: (chunk: ReadonlyArray<T>) => Effect.Effect<unknown, SqlError.SqlError>
  ) => Effect.forEach(statementChunks(rows), statement, { discard: true })

  /**
   * Applies the final state of each (record, user) in `events` (ChangeSet) and
   * returns how many of them had a rating before. Runs inside the caller's
   * transaction.
   *
   * Each aggregate moves by the difference between a rating's value before and
   * after, so that value must be the one replaced:
   * - On MariaDB, new ratings go in first with `INSERT IGNORE .. RETURNING`,
   *   which names the rows it inserted; the others existed. Deletions return the
   *   values they removed (`DELETE .. RETURNING`). Finding out this way costs
   *   the server an insert's duplicate check, where reading the keys costs it
   *   twice an insert (an IN list of row constructors is expensive to plan).
   * - Other ratings that exist are read with a lock, so nobody changes them
   *   before this transaction ends.
   * - Ratings still absent are inserted with a plain INSERT: if a concurrent
   *   transaction inserted one meanwhile, it fails on the duplicate key, and the
   *   transaction runs again and finds it.
   */
  const apply = (events: ReadonlyArray<RatingEvent>) =>
    Effect.gen(function*() {
      const finals = ChangeSet.finalChanges(events)
      if (finals.size === 0) return 0
      const changes = globalThis.Array.from(finals.values())
      /** The batch's change for a rating the server returned. */
      const changeOf = (row: ReadonlyArray<unknown>): ChangeSet.Change => {
        const change = finals.get(ratingOf(row))
        if (change === undefined) {
          throw new ForeignRow("it stored an id other than the one sent (a character it cannot hold)")
        }
        return change
      }
      /** Ratings as they were, from rows of (record_type, record_id, user_id, value). */
      let existed = 0
      const knowBefore = (rows: ReadonlyArray<ReadonlyArray<unknown>>) =>
        rows.forEach((row) => {
          const value = row[3]
          if (typeof value !== "number") throw new TypeError(`ratings.value arrived as ${typeof value}`)
          changeOf(row).before = value
          existed++
        })

      if (server.returning) {
        // IGNORE skips rows whose key exists; a value out of range still fails (CHECK), and validation bounds every column.
        yield* inChunks(changes.filter((change) => change.next !== undefined), (chunk) =>
          sql.unsafe(
            `INSERT IGNORE INTO ratings (record_type, record_id, user_id, value) VALUES ${placeholders(chunk.length, 4)}
             RETURNING record_type, record_id, user_id`,
            ratingParams(chunk)
          ).values.pipe(Effect.map((rows) => markInserted(chunk, rows, changeOf))))
        const deletions = changes.filter((change) => change.next === undefined)
        yield* inChunks(deletions, (chunk) =>
          sql.unsafe(
            `DELETE FROM ratings WHERE ${whereKeys(chunk.length)} RETURNING record_type, record_id, user_id, value`,
            keyParams(chunk)
          )
            .values.pipe(Effect.map(knowBefore)))
        for (const change of deletions) {
          change.applied = true
        }
      }

      yield* inChunks(changes.filter((change) => !change.applied), (chunk) =>
        sql.unsafe(
          `SELECT record_type, record_id, user_id, value FROM ratings
           WHERE ${whereKeys(chunk.length)} FOR UPDATE`,
          keyParams(chunk)
        ).values.pipe(Effect.map(knowBefore)))

      const { deletes, inserts, moved, updates } = ChangeSet.plan(changes)
      yield* inChunks(inserts, (chunk) =>
        sql.unsafe(
          `INSERT INTO ratings (record_type, record_id, user_id, value) VALUES ${placeholders(chunk.length, 4)}`,
          ratingParams(chunk)
        ))
      yield* inChunks(updates, (chunk) =>
        sql.unsafe(
          `INSERT INTO ratings (record_type, record_id, user_id, value) VALUES ${placeholders(chunk.length, 4)}
           ON DUPLICATE KEY UPDATE value = VALUES(value)`,
          ratingParams(chunk)
        ))
      yield* inChunks(deletes, (chunk) =>
        sql.unsafe(`DELETE FROM ratings WHERE ${whereKeys(chunk.length)}`, keyParams(chunk)))
      // Aggregates are what concurrent batches share (when a producer does not key by record):
      // the plan lists them in one order, so such batches wait for each other rather than deadlock.
      yield* inChunks(moved, (chunk) =>
        sql.unsafe(
          `INSERT INTO rating_aggregates (record_type, record_id, ratings_count, ratings_sum) VALUES ${
            placeholders(chunk.length, 4)
          }
           ON DUPLICATE KEY UPDATE ratings_count = ratings_count + VALUES(ratings_count),
                                   ratings_sum = ratings_sum + VALUES(ratings_sum)`,
          aggregateParams(chunk)
        ))
      return existed
    })

  const readCheckpoint = (stream: string, lock: boolean) =>
    (lock
      ? sql`SELECT next_position FROM rating_event_checkpoints WHERE stream = ${stream} FOR UPDATE`
      : sql`SELECT next_position FROM rating_event_checkpoints WHERE stream = ${stream}`).pipe(
        Effect.flatMap(Schema.decodeUnknown(Schema.Array(CheckpointRow))),
        Effect.catchTag("ParseError", Effect.die),
        Effect.map(([row]) => Option.map(Option.fromNullable(row), (r) => r.nextPosition))
      )

  const applyStreamBatch = (batch: StreamBatch) =>
    Effect.gen(function*() {
      // Locking the stream's row first serialises two consumers that both believe
      // they own the partition (kafkajs has no fencing during a rebalance). The
      // upsert takes the lock exclusively at once, whether the row exists or not.
      yield* sql`INSERT INTO rating_event_checkpoints (stream, next_position) VALUES (${batch.stream}, 0)
        ON DUPLICATE KEY UPDATE next_position = next_position`
      const split = Redelivery.split(batch, yield* readCheckpoint(batch.stream, true))
      yield* apply(split.fresh)
      yield* sql`UPDATE rating_event_checkpoints SET next_position = ${split.next.toString()} WHERE stream = ${batch.stream}`
      return { applied: split.fresh.length, redelivered: split.redelivered }
    })

  return RatingRepository.of({
    aggregate: (key) =>
      sql`SELECT ratings_count, ratings_sum FROM rating_aggregates
          WHERE record_type = ${key.recordType} AND record_id = ${key.recordId}`.pipe(
        Effect.flatMap(Schema.decodeUnknown(Schema.Array(AggregateRow))),
        Effect.catchTag("ParseError", Effect.die),
        Effect.map(([row]) =>
          row === undefined
            ? AggregatedRating.empty
            : new AggregatedRating({ count: row.ratingsCount, sum: row.ratingsSum })
        ),
        unavailable,
        Effect.withSpan("RatingRepository.aggregate")
      ),
    aggregates: ({ recordIds, recordType }) =>
      (recordIds.length === 0
        ? Effect.succeed([])
        : sql`SELECT record_id, ratings_count, ratings_sum FROM rating_aggregates
            WHERE record_type = ${recordType} AND ${sql.in("record_id", recordIds)}`.pipe(
          Effect.flatMap(Schema.decodeUnknown(Schema.Array(IdAggregateRow))),
          Effect.catchTag("ParseError", Effect.die),
          Effect.map((rows) => {
            const found = new Map(rows.map((row) => [row.recordId, row]))
            return recordIds.map((recordId) => {
              const row = found.get(recordId)
              return row === undefined || row.ratingsCount === 0
                ? AggregatedRating.empty
                : new AggregatedRating({ count: row.ratingsCount, sum: row.ratingsSum })
            })
          })
        )).pipe(unavailable, Effect.withSpan("RatingRepository.aggregates")),
    ranked: (query) =>
      rankedStatement(sql, query).pipe(
        // Columns of our own schema, read as the driver gives them (BIGINT as a number below 2^53).
        Effect.map((rows) =>
          rows.map((row) =>
            new RankedRecord({
              recordId: row.recordId as RecordId,
              rating: new AggregatedRating({ count: Number(row.ratingsCount), sum: Number(row.ratingsSum) }, true),
              score: row.dampedScore
            }, true)
          )
        ),
        unavailable,
        Effect.withSpan("RatingRepository.ranked")
      ),
    put: (rating) =>
      transaction(apply([{ eventType: "put", ...rating }])).pipe(
        Effect.asVoid,
        Effect.withSpan("RatingRepository.put")
      ),
    remove: (key) =>
      transaction(apply([{ eventType: "delete", ...key }])).pipe(
        Effect.map((existed) => existed > 0),
        Effect.withSpan("RatingRepository.remove")
      ),
    applyEvents: (events) =>
      transaction(apply(events)).pipe(
        Effect.asVoid,
        Effect.withSpan("RatingRepository.applyEvents", { attributes: { "batch.size": events.length } })
      ),
    applyStreamBatch: (batch) =>
      transaction(applyStreamBatch(batch)).pipe(
        Effect.withSpan("RatingRepository.applyStreamBatch", {
          attributes: { "batch.size": batch.events.length, "batch.stream": batch.stream }
        })
      ),
    checkpoint: (stream) =>
      readCheckpoint(stream, false).pipe(unavailable, Effect.withSpan("RatingRepository.checkpoint"))
  })
})

export const layer: Layer.Layer<RatingRepository, never, SqlClient.SqlClient | Mysql.MysqlServer> = Layer.effect(
  RatingRepository,
  make
)
