/**
 * Field-level validation shared by every wire: gRPC, HTTP, Effect RPC and rating
 * events. Limits here are the limits of the storage columns too.
 */
import { Schema } from "effect"

export const MAX_ID_LENGTH = 128
export const MAX_TITLE_LENGTH = 256
export const MAX_DESCRIPTION_LENGTH = 4096

const mustBeString = { message: () => "must be a string" }

// UTF-8 has no encoding for a lone surrogate: MySQL and MariaDB would store U+FFFD in its place.
const LONE_SURROGATE = /\p{Cs}/u
// C0, DEL and C1, NUL among them: invisible in logs, meaningless in a name.
const CONTROL = /\p{Cc}/u
// What a decoder puts where it could not read the bytes: two different ids sent would look alike.
const REPLACEMENT_CHARACTER = "\uFFFD"
const NOT_IN_IDENTIFIERS = /[\p{Cc}\p{Cs}\uFFFD]/u

/**
 * Whether `value` is a valid identifier, exactly as {@link identifier} decides,
 * without the schema: for paths that check many values (Kafka events) and must
 * agree with it (a property test holds them together).
 */
export const isIdentifier = (value: unknown): value is string =>
  typeof value === "string" && value.length >= 1 && value.length <= MAX_ID_LENGTH && value.trim() === value &&
  !NOT_IN_IDENTIFIERS.test(value)

/**
 * An identifier: 1 to {@link MAX_ID_LENGTH} characters (UTF-16 code units), no
 * surrounding whitespace, well-formed Unicode (no lone surrogate), no control
 * characters, no U+FFFD. These rules keep the id a client sent and the id
 * stored the same string.
 */
export const identifier = <const B extends string>(brand: B) =>
  Schema.String.annotations(mustBeString).pipe(
    Schema.minLength(1, { message: () => "must not be empty" }),
    Schema.maxLength(MAX_ID_LENGTH, { message: () => `must be at most ${MAX_ID_LENGTH} characters` }),
    Schema.filter((s) => s.trim() === s, { message: () => "must not start or end with whitespace" }),
    Schema.filter((s) => !LONE_SURROGATE.test(s), {
      message: () => "must be well-formed Unicode (it holds a lone surrogate)"
    }),
    Schema.filter((s) => !CONTROL.test(s), { message: () => "must not contain control characters" }),
    Schema.filter((s) => !s.includes(REPLACEMENT_CHARACTER), {
      message: () => "must not contain U+FFFD (the replacement character)"
    }),
    Schema.brand(brand)
  )

/** Free text of bounded length, well-formed Unicode; `min` 1 makes it required. */
export const text = (options: { readonly min: 0 | 1; readonly max: number }) => {
  const bounded = Schema.String.annotations(mustBeString).pipe(
    Schema.maxLength(options.max, { message: () => `must be at most ${options.max} characters` }),
    Schema.filter((s) => !LONE_SURROGATE.test(s), {
      message: () => "must be well-formed Unicode (it holds a lone surrogate)"
    })
  )
  return options.min === 1 ? bounded.pipe(Schema.minLength(1, { message: () => "must not be empty" })) : bounded
}

/**
 * Orders strings by Unicode code point, which is the order of their UTF-8 bytes
 * and so of a binary collation in MySQL/MariaDB. JavaScript's `<` compares UTF-16
 * code units instead, which puts U+E000..U+FFFF after astral characters: memory
 * adapters use this so that they page in the same order as the database.
 */
export const compareCodePoints = (a: string, b: string): -1 | 0 | 1 => {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    // Surrogates (D800..DFFF) encode code points above FFFF: they sort after every other unit.
    const xs = x >= 0xd800 && x <= 0xdfff
    const ys = y >= 0xd800 && y <= 0xdfff
    if (xs !== ys) return xs ? 1 : -1
    return x < y ? -1 : 1
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1
}

/** The most items one batch or one page may hold on any wire. */
export const MAX_BATCH_SIZE = 100

/** The ids of one batch: at most {@link MAX_BATCH_SIZE}. */
export const batchOf = <A, I, R>(id: Schema.Schema<A, I, R>) =>
  Schema.Array(id).pipe(
    Schema.maxItems(MAX_BATCH_SIZE, { message: () => `must hold at most ${MAX_BATCH_SIZE} ids` })
  )
/** The most rows a backend lists in one call (a page and one more, with room to spare). */
export const MAX_LIST_LIMIT = 1000

/** How many rows one listing call between services returns: 1 to {@link MAX_LIST_LIMIT}. */
export const ListLimit = Schema.Number.pipe(Schema.int(), Schema.between(1, MAX_LIST_LIMIT)).annotations({
  message: () => ({ message: `must be an integer from 1 to ${MAX_LIST_LIMIT}`, override: true })
})
