/** A test double of the RatingEventPublisher port that keeps every batch it is given. */
import type { RatingEvent } from "@movieapp/contracts/Rating"
import { Context, Effect, Layer, Ref } from "effect"
import { PublishError, RatingEventPublisher } from "../src/ports/RatingEventPublisher.js"

export class RecordingPublisher extends Context.Tag("test/RecordingPublisher")<RecordingPublisher, {
  /** The accepted batches, in the order they were published. */
  readonly batches: Effect.Effect<ReadonlyArray<ReadonlyArray<RatingEvent>>>
}>() {
  /** Accepts every batch; with `failOnBatch` n, the n-th call (1-based) fails and nothing after it is accepted. */
  static layer(
    options: { readonly failOnBatch?: number } = {}
  ): Layer.Layer<RatingEventPublisher | RecordingPublisher> {
    return Layer.effectContext(Effect.gen(function*() {
      const batches = yield* Ref.make<ReadonlyArray<ReadonlyArray<RatingEvent>>>([])
      const calls = yield* Ref.make(0)
      const publisher = RatingEventPublisher.of({
        publish: (events) =>
          Effect.flatMap(Ref.updateAndGet(calls, (n) => n + 1), (call) =>
            call === options.failOnBatch
              ? new PublishError({ message: `batch ${call} refused` })
              : Ref.update(batches, (all) => [...all, events]))
      })
      return Context.make(RatingEventPublisher, publisher).pipe(
        Context.add(RecordingPublisher, RecordingPublisher.of({ batches: Ref.get(batches) }))
      )
    }))
  }
}
