/**
 * A batch of rating events as changes to stored ratings. Intermediate states of
 * one (record, user) within a batch cannot change the final aggregate, so only
 * the last event per rating counts; each record's aggregate then moves by the
 * differences between its ratings' values before and after the batch.
 */
import type { RatingEvent, RatingKey, RecordKey } from "@movieapp/contracts/Rating"
import { Option } from "effect"
import * as Aggregate from "./Aggregate.js"
import * as Identity from "./Identity.js"

/** A user's rating for a record after a batch, and what it was before. */
export interface Change {
  /** Its record's identity (Identity.record): aggregates are per record. */
  readonly record: string
  readonly key: RatingKey
  /** The value after the batch; undefined when deleted. */
  readonly next: number | undefined
  /** The value before, once the store told it. */
  before: number | undefined
  /** Written already, by the storage's way of finding out `before` (an insert where absent, a delete). */
  applied: boolean
}

/** The last change of each rating in `events`, by its identity (Identity.rating). */
export const finalChanges = (events: ReadonlyArray<RatingEvent>): Map<string, Change> => {
  const finals = new Map<string, Change>()
  for (const event of events) {
    finals.set(Identity.rating(event), {
      record: Identity.record(event),
      key: event,
      next: event.eventType === "put" ? event.value : undefined,
      before: undefined,
      applied: false
    })
  }
  return finals
}

/** A record's aggregate and how the batch moves it. */
export interface Moved {
  readonly key: RecordKey
  readonly delta: Aggregate.Delta
}

/** What is left to write once every change knows its value before. */
export interface Plan {
  /** Ratings that were absent, to insert. */
  readonly inserts: ReadonlyArray<Change>
  /** Ratings that change value. */
  readonly updates: ReadonlyArray<Change>
  /** Ratings that go away. */
  readonly deletes: ReadonlyArray<Change>
  /**
   * Aggregates that move, in the order of their records' identities: a store
   * that locks them takes the locks in one order, so batches sharing records
   * wait for each other rather than deadlock.
   */
  readonly moved: ReadonlyArray<Moved>
}

/** The writes `changes` still need (applied ones excepted) and the aggregates they move (all of them). */
export const plan = (changes: Iterable<Change>): Plan => {
  const deltas = new Map<string, { readonly key: RecordKey; delta: Aggregate.Delta }>()
  const inserts: Array<Change> = []
  const updates: Array<Change> = []
  const deletes: Array<Change> = []
  for (const change of changes) {
    const { before, next } = change
    if (before === next) continue
    if (!change.applied) (before === undefined ? inserts : next === undefined ? deletes : updates).push(change)
    const entry = deltas.get(change.record)
    const delta = Aggregate.delta(Option.fromNullable(before), Option.fromNullable(next))
    if (entry === undefined) deltas.set(change.record, { key: change.key, delta })
    else entry.delta = Aggregate.combine(entry.delta, delta)
  }
  const moved = Array.from(deltas.entries())
    .filter(([, { delta }]) => delta.count !== 0 || delta.sum !== 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, entry]) => entry)
  return { inserts, updates, deletes, moved }
}
