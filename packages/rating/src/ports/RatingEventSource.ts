/**
 * Ingestion port: where rating events come from. Adapters: in-process (events
 * submitted over Effect RPC) and a Kafka consumer.
 */
import type { RatingEvent } from "@movieapp/contracts/Rating"
import { Context, Data, type Effect } from "effect"

/** An event and its position in the stream it was read from. */
export interface PositionedEvent {
  readonly position: bigint
  readonly event: RatingEvent
}

/**
 * What a source hands over:
 * - `Direct`: events submitted to this process, never redelivered.
 * - `Stream`: events read from a stream that redelivers after a crash (a Kafka
 *   partition). Positions rise within `stream`; `next` is the position after the
 *   batch, counting events the source dropped as invalid, and is recorded with
 *   the events so that a redelivered event is never applied twice.
 */
export type EventBatch = Data.TaggedEnum<{
  Direct: { readonly events: ReadonlyArray<RatingEvent> }
  Stream: { readonly stream: string; readonly events: ReadonlyArray<PositionedEvent>; readonly next: bigint }
}>
export const EventBatch = Data.taggedEnum<EventBatch>()
export type StreamBatch = Data.TaggedEnum.Value<EventBatch, "Stream">

export class RatingEventSource extends Context.Tag("@movieapp/rating/RatingEventSource")<RatingEventSource, {
  /**
   * Hands each batch to `handle`, in order within a stream, and acknowledges a
   * batch only after `handle` succeeded for it. Runs until interrupted.
   */
  readonly consume: <E, R>(
    handle: (batch: EventBatch) => Effect.Effect<void, E, R>
  ) => Effect.Effect<never, E, R>
}>() {}
