/**
 * Exactly-once over a redelivering stream: a stream's checkpoint is the position
 * after the last batch applied from it, stored with the effects of that batch. A
 * delivery is split against it: events before it were applied already.
 */
import type { RatingEvent } from "@movieapp/contracts/Rating"
import { Option } from "effect"
import type { StreamBatch } from "../ports/RatingEventSource.js"

export interface Split {
  readonly fresh: ReadonlyArray<RatingEvent>
  readonly redelivered: number
  /** The checkpoint after applying `fresh`: it never moves backwards. */
  readonly next: bigint
}

export const split = (batch: StreamBatch, checkpoint: Option.Option<bigint>): Split => {
  const from = Option.getOrElse(checkpoint, () => -1n)
  const fresh = batch.events.filter((e) => e.position >= from).map((e) => e.event)
  return { fresh, redelivered: batch.events.length - fresh.length, next: batch.next > from ? batch.next : from }
}
