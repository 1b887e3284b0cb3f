/**
 * The JSON form of one rating event, as files and Kafka messages carry it (the
 * original ingestor's shape: `{"userId","recordId","recordType","value","providerId","eventType"}`).
 * Decoding explains a rejection in one line naming the field, for people and
 * dead-letter records alike.
 */
import { Either, ParseResult, Schema } from "effect"
import { InvalidArgument } from "./Errors.js"
import { RatingEvent } from "./Rating.js"

const decodeEvent = Schema.decodeUnknownEither(RatingEvent)
const encodeEvent = Schema.encodeSync(RatingEvent)

/** "null", "an array", "an object", "a string", ...: for reasons. */
export const describeType = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : `a ${typeof value}`

/** A parsed JSON value as a rating event, or why it is not one. */
export const decode = (value: unknown): Either.Either<RatingEvent, string> => {
  // A union's decode error for a non-object spells out both struct types; say it plainly.
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return Either.left(`must be a JSON object, found ${describeType(value)}`)
  }
  return Either.mapLeft(decodeEvent(value), (error: ParseResult.ParseError) => InvalidArgument.fromParseError(error, "asWritten").message)
}

/** JSON text as a rating event, or why it is not one. */
export const parse = (text: string): Either.Either<RatingEvent, string> =>
  Either.try({ try: (): unknown => JSON.parse(text), catch: (error) => `not valid JSON (${error instanceof Error ? error.message : String(error)})` }).pipe(
    Either.flatMap(decode)
  )

export const stringify = (event: RatingEvent): string => JSON.stringify(encodeEvent(event))
