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
import * as Redelivery from "../domain/Redelivery.js"
import type { StreamBatch } from "../ports/RatingEventSource.js"
import { RatingRepository } from "../ports/RatingRepository.js"

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
const RatingRow = Schema.Struct({ recordType: Schema.String, recordId: Schema.String, userId: Schema.String, value: Schema.Number })

const recordOf = (key: { readonly recordType: string; readonly recordId: string }) => `${key.recordType}\u0000${key.recordId}`
const ratingOf = (key: { readonly recordType: string; readonly recordId: string; readonly userId: string }) =>
  `${recordOf(key)}\u0000${key.userId}`

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

/** `(?, ?, ?), (?, ?, ?)`: `rows` rows of `width` placeholders. */
const placeholders = (rows: number, width: number) => Array.replicate(`(${Array.replicate("?", width).join(", ")})`, rows).join(", ")

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

/** A user's rating for a record after a batch: its value, or undefined when deleted. */
interface Change {
  readonly key: RatingKey
  readonly next: number | undefined
}

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // READ COMMITTED: locking reads take no gap locks, so concurrent batches over
  // different keys never wait for each other. Correctness does not rest on it
  // (see apply), only speed.
  const withTransaction = Mysql.withIsolation(sql, "READ COMMITTED")

  /** One transaction, run again when it lost a race with a concurrent one. */
  const transaction = <A>(effect: Effect.Effect<A, SqlError.SqlError>) =>
    effect.pipe(
      withTransaction,
      Effect.retry({ while: isTransient, schedule: Schedule.exponential("5 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(10))) }),
      unavailable
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
   * after, so that value must be the one replaced. Ratings that exist are read
   * with a lock, so nobody changes them before this transaction ends. Ratings that
   * do not exist are inserted with a plain INSERT: if a concurrent transaction
   * inserted one meanwhile, it fails on the duplicate key, and the transaction
   * runs again and finds it.
   */
  const apply = (events: ReadonlyArray<RatingEvent>) =>
    Effect.gen(function* () {
      const finals = new Map<string, Change>()
      for (const event of events) {
        const key = { recordType: event.recordType, recordId: event.recordId, userId: event.userId }
        finals.set(ratingOf(key), { key, next: event.eventType === "put" ? event.value : undefined })
      }
      if (finals.size === 0) return 0
      // Locking in key order keeps concurrent batches from deadlocking on each other as often.
      const changes = [...finals.keys()].sort().map((id) => finals.get(id)!)

      const previous = new Map<string, number>()
      yield* inChunks(changes, (chunk) =>
        sql.unsafe(
          `SELECT record_type, record_id, user_id, value FROM ratings
           WHERE ${whereKeys(chunk.length)} FOR UPDATE`,
          keyParams(chunk)
        ).pipe(
          Effect.flatMap(Schema.decodeUnknown(Schema.Array(RatingRow))),
          Effect.catchTag("ParseError", Effect.die), // rows we wrote ourselves: a mismatch is a bug
          Effect.map((rows) => rows.forEach((row) => previous.set(ratingOf(row), row.value)))
        ))

      const deltas = new Map<string, { readonly key: RecordKey; delta: Aggregate.Delta }>()
      const inserts: Array<Change> = []
      const updates: Array<Change> = []
      const deletes: Array<Change> = []
      for (const change of changes) {
        const before = previous.get(ratingOf(change.key))
        if (before === change.next) continue
        if (before === undefined) inserts.push(change)
        else if (change.next === undefined) deletes.push(change)
        else updates.push(change)
        const record = recordOf(change.key)
        const entry = deltas.get(record) ?? { key: { recordType: change.key.recordType, recordId: change.key.recordId }, delta: Aggregate.zero }
        entry.delta = Aggregate.combine(entry.delta, Aggregate.delta(Option.fromNullable(before), Option.fromNullable(change.next)))
        deltas.set(record, entry)
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
      const moved = [...deltas.values()].filter(({ delta }) => delta.count !== 0 || delta.sum !== 0)
      yield* inChunks(moved, (chunk) =>
        sql.unsafe(
          `INSERT INTO rating_aggregates (record_type, record_id, ratings_count, ratings_sum) VALUES ${placeholders(chunk.length, 4)}
           ON DUPLICATE KEY UPDATE ratings_count = ratings_count + VALUES(ratings_count),
                                   ratings_sum = ratings_sum + VALUES(ratings_sum)`,
          aggregateParams(chunk)
        ))
      return previous.size
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

export const layer: Layer.Layer<RatingRepository, never, SqlClient.SqlClient> = Layer.effect(RatingRepository, make)
