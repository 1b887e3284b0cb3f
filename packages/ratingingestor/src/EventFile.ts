/**
 * A file of rating events: a JSON array in the original ingestor's shape
 * (`{"userId","recordId","recordType","value","providerId","eventType"}`).
 * Every record is validated, so one run reports every bad record at once.
 */
import { FileSystem } from "@effect/platform"
import { InvalidArgument } from "@movieapp/contracts/Errors"
import { RatingEvent } from "@movieapp/contracts/Rating"
import { Data, Effect, Either, Schema } from "effect"

/** The file cannot be read, is not JSON, or is not a JSON array. */
export class EventFileError extends Data.TaggedError("EventFileError")<{
  readonly path: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

/** A record that is not a valid rating event; `index` is its 0-based position in the array. */
export interface InvalidRecord {
  readonly index: number
  readonly reason: string
}

export interface Contents {
  /** The valid events, in file order. */
  readonly valid: ReadonlyArray<RatingEvent>
  readonly invalid: ReadonlyArray<InvalidRecord>
}

const decodeEvent = Schema.decodeUnknownEither(RatingEvent)

const describeType = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : `a ${typeof value}`

/** Splits already parsed records into valid events and the reasons the others are not. */
export const validate = (records: ReadonlyArray<unknown>): Contents => {
  const valid: Array<RatingEvent> = []
  const invalid: Array<InvalidRecord> = []
  records.forEach((record, index) => {
    // A union's decode error for a non-object spells out both struct types; say it plainly.
    if (typeof record !== "object" || record === null || Array.isArray(record)) {
      invalid.push({ index, reason: `must be a JSON object, found ${describeType(record)}` })
      return
    }
    Either.match(decodeEvent(record), {
      onLeft: (error) => invalid.push({ index, reason: InvalidArgument.fromParseError(error, "asWritten").message }),
      onRight: (event) => valid.push(event)
    })
  })
  return { valid, invalid }
}

/** Reads, parses and validates the file at `path`. */
export const read = Effect.fn("EventFile.read")(function* (path: string) {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs.readFileString(path).pipe(
    Effect.mapError((error) =>
      new EventFileError({
        path,
        reason: error._tag === "SystemError" && error.reason === "NotFound" ? "no such file" : `cannot read the file (${error.message})`,
        cause: error
      })
    )
  )
  const parsed = yield* Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: (error) =>
      new EventFileError({ path, reason: `not valid JSON (${error instanceof Error ? error.message : String(error)})`, cause: error })
  })
  if (!Array.isArray(parsed)) {
    return yield* new EventFileError({ path, reason: `expected a JSON array of rating events, found ${describeType(parsed)}` })
  }
  return validate(parsed)
})
