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
 * and one statement takes at most 65,535 placeholders; and MariaDB turns IN lists of 1000 or more into a subquery it plans poorly.
 */
const STATEMENT_ROWS = 500

/** InnoDB resolves lock conflicts between concurrent batches by aborting one: run it again. */
const isTransient = (error: unknown) =>
  error instanceof SqlError.SqlError &&
  [1213 /* ER_LOCK_DEADLOCK */, 1205 /* ER_LOCK_WAIT_TIMEOUT */].includes((error.cause as { errno?: number } | undefined)?.errno ?? 0)

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  const tuple = (key: RatingKey) => sql`(${key.recordType}, ${key.recordId}, ${key.userId})`

  /** One transaction, run again when InnoDB aborts it for a lock conflict. */
  const transaction = <A>(effect: Effect.Effect<A, SqlError.SqlError>) =>
    effect.pipe(
      sql.withTransaction,
      Effect.retry({ while: isTransient, schedule: Schedule.exponential("5 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(10))) }),
      unavailable
    )

  /**
   * Applies the final state of each (record, user) in `events` and returns how
   * many of them had a rating before. Intermediate states of one key within a
   * batch cannot change the final aggregate, so only the last event per key counts.
   * Runs inside the caller's transaction.
   */
  const apply = (events: ReadonlyArray<RatingEvent>) =>
    Effect.gen(function* () {
      const finals = new Map<string, { readonly key: RatingKey; readonly next: Option.Option<number> }>()
      for (const event of events) {
        const key = { recordType: event.recordType, recordId: event.recordId, userId: event.userId }
        finals.set(ratingOf(key), { key, next: event.eventType === "put" ? Option.some(event.value) : Option.none() })
      }
      // Locking in key order keeps concurrent batches from deadlocking on each other as often.
      const changes = [...finals.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, change]) => change)
      if (changes.length === 0) return 0

      const rows = (yield* Effect.forEach(Array.chunksOf(changes, STATEMENT_ROWS), (chunk) =>
        sql`SELECT record_type, record_id, user_id, value FROM ratings
          WHERE (record_type, record_id, user_id) IN (${sql.csv(chunk.map((c) => tuple(c.key)))})
          ORDER BY record_type, record_id, user_id FOR UPDATE`.pipe(
          Effect.flatMap(Schema.decodeUnknown(Schema.Array(RatingRow))),
          Effect.catchTag("ParseError", Effect.die) // rows we wrote ourselves: a mismatch is a bug
        ))).flat()
      const previous = new Map(rows.map((row) => [ratingOf(row), row.value]))

      const deltas = new Map<string, { readonly key: RecordKey; delta: Aggregate.Delta }>()
      const puts: Array<Record<string, unknown>> = []
      const deletes: Array<RatingKey> = []
      for (const { key, next } of changes) {
        const before = Option.fromNullable(previous.get(ratingOf(key)))
        if (Option.isNone(before) && Option.isNone(next)) continue
        if (Option.isSome(next)) puts.push({ ...key, value: next.value })
        else deletes.push(key)
        const record = recordOf(key)
        const entry = deltas.get(record) ?? { key: { recordType: key.recordType, recordId: key.recordId }, delta: Aggregate.zero }
        entry.delta = Aggregate.combine(entry.delta, Aggregate.delta(before, next))
        deltas.set(record, entry)
      }
      if (puts.length > 0) {
        yield* Effect.forEach(Array.chunksOf(puts, STATEMENT_ROWS), (chunk) =>
          sql`INSERT INTO ratings ${sql.insert(chunk)} ON DUPLICATE KEY UPDATE value = VALUES(value)`, { discard: true })
      }
      if (deletes.length > 0) {
        yield* Effect.forEach(Array.chunksOf(deletes, STATEMENT_ROWS), (chunk) =>
          sql`DELETE FROM ratings WHERE (record_type, record_id, user_id) IN (${sql.csv(chunk.map(tuple))})`, { discard: true })
      }
      const moved = [...deltas.values()].filter(({ delta }) => delta.count !== 0 || delta.sum !== 0)
      if (moved.length > 0) {
        yield* Effect.forEach(Array.chunksOf(moved, STATEMENT_ROWS), (chunk) =>
          sql`INSERT INTO rating_aggregates ${sql.insert(chunk.map(({ key, delta }) => ({
            ...key,
            ratingsCount: delta.count,
            ratingsSum: delta.sum
          })))}
            ON DUPLICATE KEY UPDATE ratings_count = ratings_count + VALUES(ratings_count),
                                    ratings_sum = ratings_sum + VALUES(ratings_sum)`, { discard: true })
      }
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
      // they own the partition (kafkajs has no fencing during a rebalance).
      yield* sql`INSERT IGNORE INTO rating_event_checkpoints (stream, next_position) VALUES (${batch.stream}, 0)`
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
