/** Accepts rating events submitted directly to this service (the SubmitRatingEvents RPC). */
import { type InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import type { RatingEvent } from "@movieapp/contracts/Rating"
import { Context, Effect, Layer } from "effect"

export class RatingEventInbox extends Context.Tag("@movieapp/rating/RatingEventInbox")<RatingEventInbox, {
  /**
   * Completes once the events are applied. Fails with InvalidArgument when
   * storage refuses them (nothing is applied), ServiceUnavailable when this
   * instance does not accept direct submissions or is stopping.
   */
  readonly submit: (events: ReadonlyArray<RatingEvent>) => Effect.Effect<void, InvalidArgument | ServiceUnavailable>
}>() {
  /** For instances whose events come from elsewhere (a broker): every submission is refused with `reason`. */
  static readonly layerClosed = (reason: string): Layer.Layer<RatingEventInbox> =>
    Layer.succeed(RatingEventInbox, {
      submit: () => Effect.fail(new ServiceUnavailable({ service: "rating ingestion", reason }))
    })
}
