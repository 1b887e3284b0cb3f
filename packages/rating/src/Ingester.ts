/**
 * Applies rating events from the event source to the repository, batch by batch.
 * While storage is unavailable it pauses and retries the same batch with backoff,
 * so nothing is acknowledged (or lost) until it is stored.
 */
import { Effect, Layer, Metric, Schedule } from "effect"
import { EventBatch, RatingEventSource } from "./ports/RatingEventSource.js"
import { RatingRepository } from "./ports/RatingRepository.js"

const storageBackoff = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.jittered
)

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

export const layer: Layer.Layer<never, never, RatingEventSource | RatingRepository> = Layer.scopedDiscard(
  Effect.gen(function* () {
    const source = yield* RatingEventSource
    const repository = yield* RatingRepository
    const store = EventBatch.$match({
      Direct: ({ events }) => repository.applyEvents(events).pipe(Effect.as(events.length), Effect.tap((n) => Metric.incrementBy(eventsIngested, n))),
      Stream: (batch) =>
        repository.applyStreamBatch(batch).pipe(
          Effect.tap(({ applied, redelivered }) =>
            Effect.all([
              Metric.incrementBy(eventsIngested, applied),
              Metric.incrementBy(eventsRedelivered, redelivered),
              redelivered > 0
                ? Effect.logInfo("skipped redelivered rating events that were applied before").pipe(
                  Effect.annotateLogs({ stream: batch.stream, redelivered, applied })
                )
                : Effect.void
            ], { discard: true })
          )
        )
    })
    yield* source.consume((batch) =>
      store(batch).pipe(
        Effect.tapError((error) => Effect.logWarning("storing rating events failed; retrying", error)),
        Effect.retry(storageBackoff),
        Effect.asVoid,
        Effect.withSpan("Ingester.applyBatch", { attributes: { "batch.size": batch.events.length } })
      )
    ).pipe(Effect.forkScoped)
  })
)
