/**
 * Incremental aggregation: a rating change moves count and sum by the difference
 * between the user's previous and new rating, so reads never scan ratings.
 */
import { AggregatedRating } from "@movieapp/contracts/Rating"
import { Option } from "effect"

/** The aggregate after one user's rating went from `previous` to `next` (None = no rating). */
export const apply = (
  aggregate: AggregatedRating,
  previous: Option.Option<number>,
  next: Option.Option<number>
): AggregatedRating =>
  new AggregatedRating({
    count: aggregate.count + (Option.isSome(next) ? 1 : 0) - (Option.isSome(previous) ? 1 : 0),
    sum: aggregate.sum + Option.getOrElse(next, () => 0) - Option.getOrElse(previous, () => 0)
  })
