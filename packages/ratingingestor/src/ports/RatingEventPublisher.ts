/**
 * Where the ingestor sends rating events. Transport-neutral: the rating service's
 * Effect RPC endpoint today, a Kafka topic later.
 */
import type { RatingEvent } from "@movieapp/contracts/Rating"
import { Context, Data, type Effect } from "effect"

/** A batch could not be delivered; `message` says where and why, for a human. */
export class PublishError extends Data.TaggedError("PublishError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export class RatingEventPublisher extends Context.Tag("@movieapp/ratingingestor/RatingEventPublisher")<
  RatingEventPublisher,
  {
    /** Delivers one batch, in order; succeeds only once the whole batch is accepted. */
    readonly publish: (events: ReadonlyArray<RatingEvent>) => Effect.Effect<void, PublishError>
  }
>() {}
