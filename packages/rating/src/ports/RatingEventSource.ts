/**
 * Ingestion port: where rating events come from. Adapters: in-process (events
 * submitted over Effect RPC) and a Kafka consumer.
 */
import type { RatingEvent } from "@movieapp/contracts/Rating"
import { Context, type Effect } from "effect"
import type { StorageRefused } from "./RatingRepository.js"

/** An event and its position in the stream it was read from. */
export interface PositionedEvent {
  readonly position: bigint
  readonly event: RatingEvent
}

/**
 * Events read from a stream that redelivers after a crash (a Kafka partition).
 * Positions rise within `stream`; `next` is the position after the batch,
 * counting events the source dropped as invalid, and is recorded with the events
 * so that a redelivered event is never applied twice.
 */
export interface StreamBatch {
  readonly stream: string
  readonly events: ReadonlyArray<PositionedEvent>
  readonly next: bigint
}

/** A stream batch as a source hands it over. */
export interface ConsumedBatch extends StreamBatch {
  /**
   * Sets aside an event storage refused, with the reason, where operators find
   * it (Kafka: the dead-letter topic). Completes once that is durable, so the
   * stream may move past the event.
   */
  readonly setAside: (event: PositionedEvent, reason: string) => Effect.Effect<void>
}

/** What a source hands its batches to. */
export interface Handlers<R> {
  /**
   * Events submitted to this process, never redelivered: applied all or none.
   * A refusal goes back to whoever submitted them.
   */
  readonly direct: (events: ReadonlyArray<RatingEvent>) => Effect.Effect<void, StorageRefused, R>
  /**
   * A batch of a redelivering stream. Completes once the batch is applied, or
   * set aside event by event where storage refused it.
   */
  readonly stream: (batch: ConsumedBatch) => Effect.Effect<void, never, R>
}

export class RatingEventSource extends Context.Tag("@movieapp/rating/RatingEventSource")<RatingEventSource, {
  /**
   * Hands each batch to its handler, in order within a stream, and acknowledges
   * a batch only after its handler completed. Runs until interrupted.
   */
  readonly consume: <R>(handlers: Handlers<R>) => Effect.Effect<never, never, R>
}>() {}
