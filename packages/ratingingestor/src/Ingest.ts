/**
 * The ingestion program: read a file of rating events, validate every record,
 * publish the valid ones in ordered batches. Exported for reuse (the dev stack
 * loads its sample data with it); the CLI in `main.ts` is one caller.
 */
import type { FileSystem } from "@effect/platform"
import type { RatingEvent } from "@movieapp/contracts/Rating"
import { Clock, Data, Effect } from "effect"
import * as EventFile from "./EventFile.js"
import * as ProgressBar from "./internal/ProgressBar.js"
import { PublishError, RatingEventPublisher } from "./ports/RatingEventPublisher.js"
import * as Synthetic from "./Synthetic.js"

export type OnInvalid = "skip" | "abort"

export const DEFAULT_BATCH_SIZE = 500

export interface Options {
  readonly file: string
  /** `abort` (default): any invalid record publishes nothing. `skip`: log it and publish the rest. */
  readonly onInvalid?: OnInvalid
  /** Events per publish call; default {@link DEFAULT_BATCH_SIZE}. */
  readonly batchSize?: number
  /** Draw a progress bar on stderr; default false. */
  readonly progress?: boolean
}

export interface Summary {
  /** Records in the file, valid or not. */
  readonly read: number
  readonly published: number
  readonly skipped: number
  readonly elapsedMs: number
}

/** How many invalid records an error message lists before summarising the rest. */
export const MAX_LISTED = 20

/** The file has invalid records and `onInvalid` is `abort`: nothing was published. */
export class InvalidEvents extends Data.TaggedError("InvalidEvents")<{
  readonly file: string
  readonly read: number
  readonly invalid: ReadonlyArray<EventFile.InvalidRecord>
}> {
  override get message() {
    const listed = this.invalid.slice(0, MAX_LISTED).map(({ index, reason }) => `record ${index}: ${reason}`)
    const more = this.invalid.length - listed.length
    if (more > 0) listed.push(`and ${more} more`)
    return `${this.file}: ${this.invalid.length} of ${this.read} records are not valid rating events, nothing was published; ${
      listed.join("; ")
    }`
  }
}

/**
 * Reads and validates `options.file`, then publishes its valid events in order,
 * one batch after another. With `abort`, any invalid record fails the run with
 * {@link InvalidEvents} before anything is published.
 */
export const run = Effect.fn("Ingest.run")(function*(options: Options) {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    return yield* Effect.dieMessage(`batchSize must be a positive integer, got ${batchSize}`)
  }
  const start = yield* Clock.currentTimeMillis

  const { invalid, valid } = yield* EventFile.read(options.file)
  const read = valid.length + invalid.length
  if (invalid.length > 0) {
    if ((options.onInvalid ?? "abort") === "abort") {
      return yield* new InvalidEvents({ file: options.file, read, invalid })
    }
    yield* Effect.forEach(
      invalid,
      ({ index, reason }) =>
        Effect.logWarning("skipping invalid rating event").pipe(
          Effect.annotateLogs({ file: options.file, index, reason })
        )
    )
  }

  yield* Effect.logInfo("publishing rating events").pipe(
    Effect.annotateLogs({ file: options.file, events: valid.length, skipped: invalid.length })
  )
  const published = yield* publishAll(valid, { total: valid.length, batchSize, progress: options.progress ?? false })
  const summary: Summary = {
    read,
    published,
    skipped: invalid.length,
    elapsedMs: (yield* Clock.currentTimeMillis) - start
  }
  yield* Effect.logInfo("published rating events").pipe(Effect.annotateLogs({ file: options.file, ...summary }))
  return summary
}) satisfies (options: Options) => Effect.Effect<
  Summary,
  EventFile.EventFileError | InvalidEvents | PublishError,
  RatingEventPublisher | FileSystem.FileSystem
>

/**
 * Publishes `events` in order, one batch after another, taking them lazily from
 * the iterable; returns how many were published. A failure says how many made it.
 */
const publishAll = (
  events: Iterable<RatingEvent>,
  options: { readonly total: number; readonly batchSize: number; readonly progress: boolean }
) =>
  Effect.scoped(Effect.gen(function*() {
    const publisher = yield* RatingEventPublisher
    const bar = yield* ProgressBar.make({ total: options.total, enabled: options.progress })
    let published = 0
    let batch: Array<RatingEvent> = []
    const flush = Effect.suspend(() => {
      const sending = batch
      batch = []
      return publisher.publish(sending).pipe(
        Effect.mapError((error) =>
          published === 0 ? error : new PublishError({
            message: `${error.message} (${published} of ${options.total} events were published before the failure)`,
            cause: error
          })
        ),
        Effect.zipRight(Effect.suspend(() => {
          published += sending.length
          return bar.advance(sending.length)
        }))
      )
    })
    for (const event of events) {
      batch.push(event)
      if (batch.length >= options.batchSize) yield* flush
    }
    if (batch.length > 0) yield* flush
    return published
  }))

export interface GenerateOptions extends Synthetic.Options {
  readonly batchSize?: number
  readonly progress?: boolean
}

/** Publishes `count` synthetic events (see Synthetic). */
export const runGenerated = Effect.fn("Ingest.runGenerated")(function*(options: GenerateOptions) {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
  const start = yield* Clock.currentTimeMillis
  yield* Effect.logInfo("publishing synthetic rating events").pipe(
    Effect.annotateLogs({ events: options.count, seed: options.seed ?? 1 })
  )
  const published = yield* publishAll(Synthetic.generate(options), {
    total: options.count,
    batchSize,
    progress: options.progress ?? false
  })
  const summary: Summary = {
    read: options.count,
    published,
    skipped: 0,
    elapsedMs: (yield* Clock.currentTimeMillis) - start
  }
  yield* Effect.logInfo("published synthetic rating events").pipe(Effect.annotateLogs({ ...summary }))
  return summary
}) satisfies (options: GenerateOptions) => Effect.Effect<Summary, PublishError, RatingEventPublisher>

/** One line for people: `read 10, published 8, skipped 2 in 2.00 s (4 events/s)`. */
export const formatSummary = (summary: Summary): string => {
  const seconds = summary.elapsedMs / 1000
  const rate = seconds > 0 ? ` (${Math.round(summary.published / seconds).toLocaleString("en-US")} events/s)` : ""
  return `read ${summary.read}, published ${summary.published}, skipped ${summary.skipped} in ${
    seconds.toFixed(2)
  } s${rate}`
}
