/**
 * Ranking by damped mean: a Bayesian average that counts C made-up ratings of
 * value m beside a record's real ones, `(C·m + sum) / (C + count)`. A record with
 * a single 10 scores barely above m; one with thousands of 9s scores almost 9.
 * C (the prior's weight) and m (its mean) are settings of a deployment, shared by
 * every instance: a MySQL database stores each score beside its aggregate, and an
 * instance started with another prior rescores the table at start.
 */
import { compareCodePoints } from "@movieapp/contracts/Fields"
import { type AggregatedRating, MAX_RATING, MIN_RATING, RankedRecord, type RecordId } from "@movieapp/contracts/Rating"
import { Config, Context, Layer } from "effect"

export interface Prior {
  /** C: how many ratings of value `mean` every record is assumed to have besides its own. Positive. */
  readonly weight: number
  /** m: the value those ratings have. */
  readonly mean: number
}

/** C = 10, m = 5.5, the middle of the scale: no record moves far from the middle on fewer than ten ratings. */
export const DEFAULT_PRIOR: Prior = { weight: 10, mean: (MIN_RATING + MAX_RATING) / 2 }

/** The prior the ranking uses; {@link DEFAULT_PRIOR} unless a deployment sets another. */
export class RankingPrior extends Context.Reference<RankingPrior>()("@movieapp/rating/RankingPrior", {
  defaultValue: (): Prior => DEFAULT_PRIOR
}) {
  static readonly layer = (prior: Prior): Layer.Layer<never> => Layer.succeed(RankingPrior, prior)
}

/** `RANKING_PRIOR_WEIGHT` and `RANKING_PRIOR_MEAN`. */
export const config: Config.Config<Prior> = Config.all({
  // Validated before the default: a check outside withDefault would name the group
  // (RANKING_PRIOR), not the variable.
  weight: Config.number("weight").pipe(
    Config.validate({
      message: "Expected a positive number of ratings",
      validation: (weight) => Number.isFinite(weight) && weight > 0
    }),
    Config.withDefault(DEFAULT_PRIOR.weight)
  ),
  mean: Config.number("mean").pipe(
    Config.validate({
      message: `Expected a rating from ${MIN_RATING} to ${MAX_RATING}`,
      validation: (mean) => mean >= MIN_RATING && mean <= MAX_RATING
    }),
    Config.withDefault(DEFAULT_PRIOR.mean)
  )
}).pipe(Config.nested("prior"), Config.nested("ranking"))

/**
 * The damped mean of `count` ratings summing to `sum`. Evaluated in this order
 * ((C·m + sum) / (C + count), in doubles) by the memory adapter and by MySQL's
 * stored column alike, so both give the same number.
 */
export const dampedMean = (prior: Prior, count: number, sum: number): number =>
  (prior.weight * prior.mean + sum) / (prior.weight + count)

/** The record in the ranking. */
export const ranked = (prior: Prior, recordId: RecordId, rating: AggregatedRating): RankedRecord =>
  new RankedRecord({ recordId, rating, score: dampedMean(prior, rating.count, rating.sum) }, true)

/** Whether `record` comes after `cursor` in the ranking (score descending, then id descending by code point). */
export const isAfter = (
  record: { readonly score: number; readonly recordId: string },
  cursor: { readonly score: number; readonly recordId: string }
): boolean =>
  record.score < cursor.score ||
  (record.score === cursor.score && compareCodePoints(record.recordId, cursor.recordId) < 0)

/** The ranking's order: score descending, then id descending by code point. */
export const order = (a: RankedRecord, b: RankedRecord): number =>
  b.score - a.score || compareCodePoints(b.recordId, a.recordId)
