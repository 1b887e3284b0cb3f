/**
 * Applies rating events from the event source to the repository, batch by batch.
 * While storage is unavailable it pauses and retries the same batch with backoff,
 * so nothing is acknowledged (or lost) until it is stored.
 */
import { Effect, Layer, Schedule } from "effect"
import { RatingEventSource } from "./ports/RatingEventSource.js"
import { RatingRepository } from "./ports/RatingRepository.js"

const storageBackoff = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.jittered
)

export const layer: Layer.Layer<never, never, RatingEventSource | RatingRepository> = Layer.scopedDiscard(
  Effect.gen(function* () {
    const source = yield* RatingEventSource
    const repository = yield* RatingRepository
    yield* source.consume((batch) =>
      repository.applyEvents(batch).pipe(
        Effect.tapError((error) => Effect.logWarning("storing rating events failed; retrying", error)),
        Effect.retry(storageBackoff),
        Effect.withSpan("Ingester.applyBatch", { attributes: { "batch.size": batch.length } })
      )
    ).pipe(Effect.forkScoped)
  })
)
