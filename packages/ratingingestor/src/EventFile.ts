/**
 * A file of rating events: a JSON array in the original ingestor's shape
 * (`{"userId","recordId","recordType","value","providerId","eventType"}`).
 * Every record is validated, so one run reports every bad record at once.
 */
import { FileSystem } from "@effect/platform"
import type { RatingEvent } from "@movieapp/contracts/Rating"
import * as RatingEventJson from "@movieapp/contracts/RatingEventJson"
import { Data, Effect, Either } from "effect"

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

const describeType = RatingEventJson.describeType

/** Splits already parsed records into valid events and the reasons the others are not. */
export const validate = (records: ReadonlyArray<unknown>): Contents => {
  const valid: Array<RatingEvent> = []
  const invalid: Array<InvalidRecord> = []
  records.forEach((record, index) =>
    Either.match(RatingEventJson.decode(record), {
      onLeft: (reason) => invalid.push({ index, reason }),
      onRight: (event) => valid.push(event)
    })
  )
  return { valid, invalid }
}

/** Reads, parses and validates the file at `path`. */
export const read = Effect.fn("EventFile.read")(function*(path: string) {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs.readFileString(path).pipe(
    Effect.mapError((error) =>
      new EventFileError({
        path,
        reason: error._tag === "SystemError" && error.reason === "NotFound"
          ? "no such file"
          : `cannot read the file (${error.message})`,
        cause: error
      })
    )
  )
  const parsed = yield* Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: (error) =>
      new EventFileError({
        path,
        reason: `not valid JSON (${error instanceof Error ? error.message : String(error)})`,
        cause: error
      })
  })
  if (!Array.isArray(parsed)) {
    return yield* new EventFileError({
      path,
      reason: `expected a JSON array of rating events, found ${describeType(parsed)}`
    })
  }
  return validate(parsed)
})
