/**
 * Applies rating events from the event source to the repository, batch by batch.
 *
 * - Storage unavailable, or a bug (a defect): the same events are retried with
 *   backoff, so nothing is acknowledged (or lost) until it is stored. Events
 *   that keep failing (STALLED_AFTER attempts in a row) stall ingestion: logged
 *   at ERROR, counted, and the `ingestion` readiness check fails (gRPC health
 *   NOT_SERVING) until they go through.
 * - Storage refusing events (StorageRefused: it cannot hold them as sent): a
 *   stream batch is split in halves until each refused event is alone; that
 *   event is set aside (a dead letter) with the reason, and the rest applied, so
 *   one event never stops its stream. Submitted events are all or none: the
 *   refusal goes back to the submitter.
 */
import type { ServiceUnavailable } from "@movieapp/contracts/Errors"
import * as Readiness from "@movieapp/platform/Readiness"
import { Cause, Effect, Layer, Metric, Option, Schedule } from "effect"
import type { ConsumedBatch, PositionedEvent } from "./ports/RatingEventSource.js"
import { RatingEventSource } from "./ports/RatingEventSource.js"
import { RatingRepository, type StorageRefused, type StreamBatchResult } from "./ports/RatingRepository.js"

const storageBackoff = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.jittered
)

/** Failed attempts in a row at the same events after which ingestion counts as stalled. */
export const STALLED_AFTER = 5

/** Events applied to storage. */
export const eventsIngested = Metric.counter("rating_events_ingested_total", {
  description: "Rating events applied to storage",
  incremental: true
})
/** Events delivered again after a crash or rebalance and recognised as applied already. */
export const eventsRedelivered = Metric.counter("rating_events_redelivered_total", {
  description: "Redelivered rating events skipped because they were applied before",
  incremental: true
})
/** Attempts at storing events that failed and are retried, by why: `unavailable` (storage) or `defect` (a bug). */
export const storeFailures = Metric.counter("rating_ingestion_failures_total", {
  description: "Attempts at storing rating events that failed and will be retried, by reason (unavailable, defect)",
  incremental: true
})
/** Streams (or submissions) whose events have failed STALLED_AFTER times in a row and still fail. */
export const stalledStreams = Metric.gauge("rating_ingestion_stalled", {
  description: "Streams (Kafka partitions) or submissions whose events keep failing to be stored"
})

/** A failed attempt that waiting may cure. */
class Retryable {
  constructor(readonly reason: "unavailable" | "defect", readonly cause: Cause.Cause<unknown>) {}
}

export const layer: Layer.Layer<never, never, RatingEventSource | RatingRepository> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const source = yield* RatingEventSource
    const repository = yield* RatingRepository
    /** Where events keep failing, and how. */
    const stalled = new Map<string, string>()
    const readiness = yield* Effect.serviceOption(Readiness.Readiness)
    if (Option.isSome(readiness)) {
      yield* readiness.value.register(
        "ingestion",
        Effect.suspend(() =>
          stalled.size === 0
            ? Effect.void
            : Effect.fail(
              new Error(
                `rating events keep failing: ${[...stalled].map(([where, why]) => `${where} (${why})`).join("; ")}`
              )
            )
        )
      )
    }

    /**
     * `attempt` until it succeeds or storage refuses the events, retrying
     * anything else; `where` names the events for logs and the health check.
     */
    const persistently = <A>(
      where: string,
      attempt: Effect.Effect<A, StorageRefused | ServiceUnavailable>
    ): Effect.Effect<A, StorageRefused> =>
      Effect.suspend(() => {
        let failures = 0
        const failed = (failure: Retryable) =>
          Effect.gen(function*() {
            failures++
            yield* Metric.increment(Metric.tagged(storeFailures, "reason", failure.reason))
            yield* failure.reason === "unavailable"
              ? Effect.logWarning("storing rating events failed; retrying", Cause.squash(failure.cause))
              : Effect.logError("storing rating events failed on a bug; retrying", failure.cause)
            if (failures !== STALLED_AFTER) return
            stalled.set(where, failure.reason === "unavailable" ? "storage unavailable" : "a defect, see the log")
            yield* Metric.set(stalledStreams, stalled.size)
            yield* Effect.logError("rating ingestion stalled: the same events keep failing", failure.cause).pipe(
              Effect.annotateLogs({ events: where, attempts: failures })
            )
          }).pipe(Effect.annotateLogs("events", where))
        const unstall = Effect.suspend(() => {
          if (!stalled.delete(where)) return Effect.void
          return Metric.set(stalledStreams, stalled.size).pipe(
            Effect.zipRight(
              Effect.logInfo("rating ingestion resumed").pipe(
                Effect.annotateLogs({ events: where, attempts: failures })
              )
            )
          )
        })
        return attempt.pipe(
          Effect.catchAllCause((cause): Effect.Effect<never, StorageRefused | Retryable> => {
            if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
            const failure = Cause.failureOption(cause)
            if (Option.isSome(failure)) {
              return failure.value._tag === "StorageRefused"
                ? Effect.fail(failure.value)
                : Effect.fail(new Retryable("unavailable", cause))
            }
            return Effect.fail(new Retryable("defect", cause))
          }),
          Effect.tapError((error) => error instanceof Retryable ? failed(error) : Effect.void),
          Effect.retry({ while: (error) => error instanceof Retryable, schedule: storageBackoff }),
          // The schedule never ends: only a refusal is left.
          Effect.catchIf(
            (error): error is Retryable => error instanceof Retryable,
            (error) => Effect.failCause(error.cause as Cause.Cause<never>)
          ),
          Effect.ensuring(unstall)
        )
      })

    const counted = (stream: string, { applied, redelivered }: StreamBatchResult) =>
      Effect.all([
        Metric.incrementBy(eventsIngested, applied),
        Metric.incrementBy(eventsRedelivered, redelivered),
        redelivered > 0
          ? Effect.logInfo("skipped redelivered rating events that were applied before").pipe(
            Effect.annotateLogs({ stream, redelivered, applied })
          )
          : Effect.void
      ], { discard: true })

    /** `events` of `batch`, then the stream's position at `next`; refused events set aside one by one. */
    const applySegment = (
      batch: ConsumedBatch,
      events: ReadonlyArray<PositionedEvent>,
      next: bigint
    ): Effect.Effect<void> => {
      const where = events.length === 0
        ? `${batch.stream} up to ${next}`
        : `${batch.stream} positions ${events[0]!.position} to ${next - 1n}`
      return persistently(where, repository.applyStreamBatch({ stream: batch.stream, events, next })).pipe(
        Effect.flatMap((result) => counted(batch.stream, result)),
        Effect.catchTag("StorageRefused", (refused) => {
          if (events.length === 0) {
            return Effect.die(new Error(`storage refused a batch without events: ${refused.reason}`))
          }
          if (events.length > 1) {
            const half = Math.ceil(events.length / 2)
            return applySegment(batch, events.slice(0, half), events[half]!.position).pipe(
              Effect.zipRight(applySegment(batch, events.slice(half), next))
            )
          }
          const event = events[0]!
          return batch.setAside(event, refused.reason).pipe(
            Effect.zipRight(
              Effect.logWarning("storage refused a rating event; set aside").pipe(
                Effect.annotateLogs({ stream: batch.stream, position: String(event.position), reason: refused.reason })
              )
            ),
            // The stream's position moves past it, so it is neither applied nor set aside again.
            Effect.zipRight(applySegment(batch, [], next))
          )
        })
      )
    }

    yield* source.consume({
      direct: (events) =>
        persistently("submitted events", repository.applyEvents(events)).pipe(
          Effect.zipRight(Metric.incrementBy(eventsIngested, events.length)),
          Effect.withSpan("Ingester.applyBatch", { attributes: { "batch.size": events.length } })
        ),
      stream: (batch) =>
        applySegment(batch, batch.events, batch.next).pipe(
          Effect.withSpan("Ingester.applyBatch", { attributes: { "batch.size": batch.events.length } })
        )
    }).pipe(Effect.forkScoped)
  })
)
