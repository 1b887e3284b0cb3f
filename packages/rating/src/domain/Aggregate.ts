/**
 * Incremental aggregation: a rating change moves count and sum by the difference
 * between the user's previous and new rating, so reads never scan ratings.
 */
import { AggregatedRating } from "@movieapp/contracts/Rating"
import { Option } from "effect"

/** How one user's rating change moves a record's aggregate (negative when a rating goes away or goes down). */
export interface Delta {
  readonly count: number
  readonly sum: number
}

export const zero: Delta = { count: 0, sum: 0 }

/** The change to an aggregate when a user's rating goes from `previous` to `next` (None = no rating). */
export const delta = (previous: Option.Option<number>, next: Option.Option<number>): Delta => ({
  count: (Option.isSome(next) ? 1 : 0) - (Option.isSome(previous) ? 1 : 0),
  sum: Option.getOrElse(next, () => 0) - Option.getOrElse(previous, () => 0)
})

export const combine = (a: Delta, b: Delta): Delta => ({ count: a.count + b.count, sum: a.sum + b.sum })

/** The aggregate after one user's rating went from `previous` to `next`. */
export const apply = (
  aggregate: AggregatedRating,
  previous: Option.Option<number>,
  next: Option.Option<number>
): AggregatedRating => {
  const change = delta(previous, next)
  return new AggregatedRating({ count: aggregate.count + change.count, sum: aggregate.sum + change.sum })
}
