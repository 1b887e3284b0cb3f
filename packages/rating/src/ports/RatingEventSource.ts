/**
 * Ingestion port: where rating events come from. Adapters: in-process (events
 * submitted over Effect RPC) and, for deployments, a Kafka consumer.
 */
import { Context, type Effect } from "effect"
import type { RatingEvent } from "@movieapp/contracts/Rating"

export class RatingEventSource extends Context.Tag("@movieapp/rating/RatingEventSource")<RatingEventSource, {
  /**
   * Hands each batch to `handle`, in order, and acknowledges a batch only after
   * `handle` succeeded for it. Runs until interrupted.
   */
  readonly consume: <E, R>(
    handle: (batch: ReadonlyArray<RatingEvent>) => Effect.Effect<void, E, R>
  ) => Effect.Effect<never, E, R>
}>() {}
