/**
 * Synthetic rating events for load and crash tests (`--generate N`): puts and
 * some deletes of random users' ratings over a set of records, reproducible from
 * a seed. Generated lazily, so a million events never sit in memory at once.
 */
import type { RatingEvent } from "@movieapp/contracts/Rating"
import { RatingValue, RecordId, UserId } from "@movieapp/contracts/Rating"

export interface Options {
  readonly count: number
  /** The same seed gives the same events. */
  readonly seed?: number
  /** Distinct records rated; default one per 100 events, from 1 to 10,000. */
  readonly records?: number
  /** Distinct users; default 10,000. */
  readonly users?: number
  /** Share of events that delete a rating; default 0.1. */
  readonly deleteRatio?: number
}

/** mulberry32: small, fast, and good enough for test data. */
const random = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function* generate(options: Options): Generator<RatingEvent> {
  const next = random(options.seed ?? 1)
  const records = options.records ?? Math.min(10_000, Math.max(1, Math.floor(options.count / 100)))
  const users = options.users ?? 10_000
  const deleteRatio = options.deleteRatio ?? 0.1
  const pick = (n: number) => Math.floor(next() * n)
  for (let i = 0; i < options.count; i++) {
    const record = pick(records)
    const key = {
      recordType: record % 5 === 0 ? "tv" as const : "movie" as const,
      recordId: RecordId.make(`synthetic-${record}`),
      userId: UserId.make(`user-${pick(users)}`)
    }
    yield next() < deleteRatio
      ? { eventType: "delete", ...key }
      : { eventType: "put", ...key, value: RatingValue.make(1 + pick(10)) }
  }
}
