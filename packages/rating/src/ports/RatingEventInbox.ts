/** Accepts rating events submitted directly to this service (the SubmitRatingEvents RPC). */
import type { ServiceUnavailable } from "@movieapp/contracts/Errors"
import type { RatingEvent } from "@movieapp/contracts/Rating"
import { Context, type Effect } from "effect"

export class RatingEventInbox extends Context.Tag("@movieapp/rating/RatingEventInbox")<RatingEventInbox, {
  /** Completes once the events are applied; fails when this instance does not accept direct submissions. */
  readonly submit: (events: ReadonlyArray<RatingEvent>) => Effect.Effect<void, ServiceUnavailable>
}>() {}
