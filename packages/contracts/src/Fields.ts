/**
 * Field-level validation shared by every wire: gRPC, HTTP, Effect RPC and rating
 * events. Limits here are the limits of the storage columns too.
 */
import { Schema } from "effect"

export const MAX_ID_LENGTH = 128
export const MAX_TITLE_LENGTH = 256
export const MAX_DESCRIPTION_LENGTH = 4096

const mustBeString = { message: () => "must be a string" }

/** An identifier: 1 to {@link MAX_ID_LENGTH} characters, no surrounding whitespace. */
export const identifier = <const B extends string>(brand: B) =>
  Schema.String.annotations(mustBeString).pipe(
    Schema.minLength(1, { message: () => "must not be empty" }),
    Schema.maxLength(MAX_ID_LENGTH, { message: () => `must be at most ${MAX_ID_LENGTH} characters` }),
    Schema.filter((s) => s.trim() === s, { message: () => "must not start or end with whitespace" }),
    Schema.brand(brand)
  )

/** Free text of bounded length; `min` 1 makes it required. */
export const text = (options: { readonly min: 0 | 1; readonly max: number }) => {
  const bounded = Schema.String.annotations(mustBeString).pipe(
    Schema.maxLength(options.max, { message: () => `must be at most ${options.max} characters` })
  )
  return options.min === 1 ? bounded.pipe(Schema.minLength(1, { message: () => "must not be empty" })) : bounded
}
