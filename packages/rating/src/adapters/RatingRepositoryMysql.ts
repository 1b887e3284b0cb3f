/**
 * Ratings and aggregates in MySQL/MariaDB (tables `ratings` and
 * `rating_aggregates`, schema/rating). Every write changes ratings and the
 * affected aggregates in one transaction, so an aggregate always equals what the
 * stored ratings imply.
 */
import { SqlClient, SqlError } from "@effect/sql"
import { AggregatedRating, type RatingEvent, type RatingKey, type RecordKey } from "@movieapp/contracts/Rating"
import * as Mysql from "@movieapp/platform/Mysql"
import { Array, Effect, Layer, Option, Schedule, Schema } from "effect"
import { fileURLToPath } from "node:url"
import * as Aggregate from "../domain/Aggregate.js"
import * as Identity from "../domain/Identity.js"
import * as Redelivery from "../domain/Redelivery.js"
import type { StreamBatch } from "../ports/RatingEventSource.js"
import { RatingRepository, StorageRefused } from "../ports/RatingRepository.js"

/** The rating service's migrations (and the table recording which ran). */
export const migrations = {
  directory: fileURLToPath(new URL("../../../../schema/rating", import.meta.url)),
  table: "rating_migrations"
} as const

const unavailable = Mysql.orUnavailable("rating storage")

// BIGINT columns arrive as numbers, or as strings when beyond 2^53.
const Count = Schema.Union(Schema.Number, Schema.NumberFromString)
const AggregateRow = Schema.Struct({ ratingsCount: Count, ratingsSum: Count })
const Position = Schema.Union(Schema.BigIntFromNumber, Schema.BigInt)
const CheckpointRow = Schema.Struct({ nextPosition: Position })

/**
 * Rows per statement: a batch from Kafka can hold tens of thousands of events,
 * one statement takes at most 65,535 placeholders, and MariaDB turns IN lists of
 * 1000 or more into a subquery it plans poorly.
 */
const STATEMENT_ROWS = 512

/**
 * `rows` cut into statements of STATEMENT_ROWS, the rest in powers of two. Each
 * statement text is prepared once per connection and kept (mysql2 caches up to
 * 16,000 per connection, the server allows 16,382 in all): with sizes from a set
 * of ten, a connection holds a few dozen, however batches vary.
 */
export const statementChunks = <T>(rows: ReadonlyArray<T>): ReadonlyArray<ReadonlyArray<T>> => {
  const chunks: Array<ReadonlyArray<T>> = []
  let at = 0
  while (at < rows.length) {
    let size = STATEMENT_ROWS
    while (size > rows.length - at) size /= 2
    chunks.push(rows.slice(at, at + size))
    at += size
  }
  return chunks
}

const placeholderLists = new Map<string, string>()

/** `(?, ?, ?), (?, ?, ?)`: `rows` rows of `width` placeholders (kept: the same few sizes recur for every batch). */
const placeholders = (rows: number, width: number) => {
  const id = `${rows}x${width}`
  let list = placeholderLists.get(id)
  if (list === undefined) {
    list = Array.replicate(`(${Array.replicate("?", width).join(", ")})`, rows).join(", ")
    placeholderLists.set(id, list)
  }
  return list
}

/**
 * The rows of `keys` rating keys. MariaDB scans the whole table for a row
 * constructor IN list of one (and a DELETE locks every row it scans), so one key
 * is spelled out.
 */
const whereKeys = (keys: number) =>
  keys === 1
    ? "record_type = ? AND record_id = ? AND user_id = ?"
    : `(record_type, record_id, user_id) IN (${placeholders(keys, 3)})`

/**
 * Lock conflicts between concurrent batches, which InnoDB resolves by aborting
 * one (deadlock, lock wait timeout), and a key another transaction inserted after
 * this one found it absent (duplicate key): run the transaction again.
 */
const isTransient = (error: unknown) =>
  error instanceof SqlError.SqlError &&
  [1213 /* ER_LOCK_DEADLOCK */, 1205 /* ER_LOCK_WAIT_TIMEOUT */, 1062 /* ER_DUP_ENTRY */].includes(
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
  error instanceof SqlError.SqlError ? refusals.get((error.cause as { errno?: number } | undefined)?.errno ?? 0) : undefined

/**
 * The server returned a rating the batch did not send: it stored an id other
 * than the one sent (a character it could not hold, replaced). Thrown where rows
 * are matched to the batch, and turned into StorageRefused for the whole write.
 */
class ForeignRow extends Error {}

/** A user's rating for a record after a batch, and what it was before. */
export interface Change {
  /** Its record's identity (Identity.record): aggregates are per record. */
  readonly record: string
  readonly key: RatingKey
  /** The value after the batch; undefined when deleted. */
  readonly next: number | undefined
  /** The value before, once known. */
  before: number | undefined
  /** Written already by the batch's first statements (MariaDB: inserted where absent, or deleted). */
  applied: boolean
}

/** The last change of each rating in `events`, by its identity (as ratingOf builds it from a row). */
export const finalChanges = (events: ReadonlyArray<RatingEvent>): Map<string, Change> => {
  const finals = new Map<string, Change>()
  for (const event of events) {
    finals.set(Identity.rating(event), {
      record: Identity.record(event),
      key: event,
      next: event.eventType === "put" ? event.value : undefined,
      before: undefined,
      applied: false
    })
  }
  return finals
}

/** A rating's identity, from a row selected as (record_type, record_id, user_id, ...) values. */
const ratingOf = (row: ReadonlyArray<unknown>) =>
  Identity.rating({ recordType: String(row[0]), recordId: String(row[1]), userId: String(row[2]) })

const isRowOf = (change: Change, row: ReadonlyArray<unknown>) =>
  row[2] === change.key.userId && row[1] === change.key.recordId && row[0] === change.key.recordType

/**
 * Marks the changes of `chunk` whose rows an INSERT .. RETURNING `returned`.
 * MariaDB returns them in the order of the VALUES list, so they are matched in
 * one pass; a row out of that order is looked up (`changeOf`) instead, so the
 * result never depends on the order.
 */
export const markInserted = (chunk: ReadonlyArray<Change>, returned: ReadonlyArray<ReadonlyArray<unknown>>, changeOf: (row: ReadonlyArray<unknown>) => Change) => {
  let at = 0
  for (const row of returned) {
    while (at < chunk.length && !isRowOf(chunk[at]!, row)) at++
    if (at < chunk.length) chunk[at++]!.applied = true
    else changeOf(row).applied = true
  }
}

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const server = yield* Mysql.MysqlServer
  // READ COMMITTED: locking reads take no gap locks, so concurrent batches over
  // different keys never wait for each other. Correctness does not rest on it
  // (see apply), only speed.
  const withTransaction = Mysql.withIsolation(sql, "READ COMMITTED")

  /** One transaction, run again when it lost a race with a concurrent one. */
  const transaction = <A>(effect: Effect.Effect<A, SqlError.SqlError>) =>
    effect.pipe(
      withTransaction,
      Effect.retry({ while: isTransient, schedule: Schedule.exponential("5 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(10))) }),
      Effect.catchIf((error) => refusalOf(error) !== undefined, (error) => refused(refusalOf(error)!, error)),
      Effect.catchSomeDefect((defect) => defect instanceof ForeignRow ? Option.some(refused(defect.message, defect)) : Option.none()),
      unavailable
    )

  /** The events' refusal, the server's own words logged for operators. */
  const refused = (reason: string, cause: unknown) =>
    Effect.logWarning("the database refused rating events", globalThis.String((cause as { cause?: unknown }).cause ?? cause)).pipe(
      Effect.zipRight(Effect.fail(new StorageRefused({ reason: `the database refused them: ${reason}` })))
    )

  /** Statements over `rows`, built by `statement(chunk)` for each of their statementChunks, in order. */
  const inChunks = <T>(rows: ReadonlyArray<T>, statement: (chunk: ReadonlyArray<T>) => Effect.Effect<unknown, SqlError.SqlError>) =>
    Effect.forEach(statementChunks(rows), statement, { discard: true })

  // Statement parameters, flattened in loops: these run for every event of every batch.
  const keyParams = (changes: ReadonlyArray<Change>) => {
    const params: Array<unknown> = []
    for (const { key } of changes) params.push(key.recordType, key.recordId, key.userId)
    return params
  }
  const ratingParams = (changes: ReadonlyArray<Change>) => {
    const params: Array<unknown> = []
    for (const { key, next } of changes) params.push(key.recordType, key.recordId, key.userId, next)
    return params
  }
  const aggregateParams = (moved: ReadonlyArray<{ readonly key: RecordKey; readonly delta: Aggregate.Delta }>) => {
    const params: Array<unknown> = []
    for (const { delta, key } of moved) params.push(key.recordType, key.recordId, delta.count, delta.sum)
    return params
  }

  /**
   * Applies the final state of each (record, user) in `events` and returns how
   * many of them had a rating before. Intermediate states of one key within a
   * batch cannot change the final aggregate, so only the last event per key counts.
   * Runs inside the caller's transaction.
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
    Effect.gen(function* () {
      const finals = finalChanges(events)
      if (finals.size === 0) return 0
      const changes = globalThis.Array.from(finals.values())
      /** The batch's change for a rating the server returned. */
      const changeOf = (row: ReadonlyArray<unknown>) => {
        const change = finals.get(ratingOf(row))
        if (change === undefined) throw new ForeignRow("it stored an id other than the one sent (a character it cannot hold)")
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
          sql.unsafe(`DELETE FROM ratings WHERE ${whereKeys(chunk.length)} RETURNING record_type, record_id, user_id, value`, keyParams(chunk))
            .values.pipe(Effect.map(knowBefore)))
        for (const change of deletions) change.applied = true
      }

      yield* inChunks(changes.filter((change) => !change.applied), (chunk) =>
        sql.unsafe(
          `SELECT record_type, record_id, user_id, value FROM ratings
           WHERE ${whereKeys(chunk.length)} FOR UPDATE`,
          keyParams(chunk)
        ).values.pipe(Effect.map(knowBefore)))

      const deltas = new Map<string, { readonly key: RecordKey; delta: Aggregate.Delta }>()
      const inserts: Array<Change> = []
      const updates: Array<Change> = []
      const deletes: Array<Change> = []
      for (const change of changes) {
        const { before, next } = change
        if (before === next) continue
        if (!change.applied) (before === undefined ? inserts : next === undefined ? deletes : updates).push(change)
        const entry = deltas.get(change.record)
        const delta = Aggregate.delta(Option.fromNullable(before), Option.fromNullable(next))
        if (entry === undefined) deltas.set(change.record, { key: change.key, delta })
        else entry.delta = Aggregate.combine(entry.delta, delta)
      }
      yield* inChunks(inserts, (chunk) =>
        sql.unsafe(`INSERT INTO ratings (record_type, record_id, user_id, value) VALUES ${placeholders(chunk.length, 4)}`, ratingParams(chunk)))
      yield* inChunks(updates, (chunk) =>
        sql.unsafe(
          `INSERT INTO ratings (record_type, record_id, user_id, value) VALUES ${placeholders(chunk.length, 4)}
           ON DUPLICATE KEY UPDATE value = VALUES(value)`,
          ratingParams(chunk)
        ))
      yield* inChunks(deletes, (chunk) =>
        sql.unsafe(`DELETE FROM ratings WHERE ${whereKeys(chunk.length)}`, keyParams(chunk)))
      // Aggregates are what concurrent batches share (when a producer does not key by record): taking
      // their locks in one order keeps such batches waiting for each other rather than deadlocking.
      const moved = globalThis.Array.from(deltas.entries())
        .filter(([, { delta }]) => delta.count !== 0 || delta.sum !== 0)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([, entry]) => entry)
      yield* inChunks(moved, (chunk) =>
        sql.unsafe(
          `INSERT INTO rating_aggregates (record_type, record_id, ratings_count, ratings_sum) VALUES ${placeholders(chunk.length, 4)}
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
    Effect.gen(function* () {
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
        Effect.map(([row]) => row === undefined ? AggregatedRating.empty : new AggregatedRating({ count: row.ratingsCount, sum: row.ratingsSum })),
        unavailable,
        Effect.withSpan("RatingRepository.aggregate")
      ),
    put: (rating) => transaction(apply([{ eventType: "put", ...rating }])).pipe(Effect.asVoid, Effect.withSpan("RatingRepository.put")),
    remove: (key) =>
      transaction(apply([{ eventType: "delete", ...key }])).pipe(Effect.map((existed) => existed > 0), Effect.withSpan("RatingRepository.remove")),
    applyEvents: (events) =>
      transaction(apply(events)).pipe(Effect.asVoid, Effect.withSpan("RatingRepository.applyEvents", { attributes: { "batch.size": events.length } })),
    applyStreamBatch: (batch) =>
      transaction(applyStreamBatch(batch)).pipe(
        Effect.withSpan("RatingRepository.applyStreamBatch", { attributes: { "batch.size": batch.events.length, "batch.stream": batch.stream } })
      ),
    checkpoint: (stream) => readCheckpoint(stream, false).pipe(unavailable, Effect.withSpan("RatingRepository.checkpoint"))
  })
})

export const layer: Layer.Layer<RatingRepository, never, SqlClient.SqlClient | Mysql.MysqlServer> = Layer.effect(RatingRepository, make)
