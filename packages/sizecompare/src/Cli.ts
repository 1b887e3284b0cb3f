/** The `sizecompare` command: prints the sizes of one record, the sample or one read from a file. */
import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Console, Data, Effect, Option, ParseResult, Schema } from "effect"
import { MetadataRecord, sampleRecord } from "./Encodings.js"
import { formatSizes, sizes } from "./SizeComparison.js"

/** The record file could not be read, is not JSON, or does not hold a record. */
export class RecordFileError extends Data.TaggedError("RecordFileError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

const decodeRecord = Schema.decodeUnknown(MetadataRecord, { errors: "all" })

// One line per problem, each led by the field it concerns, so the user knows what to fix.
const describeParseError = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`)
    .join("; ")

/** Reads a record from a JSON file holding an object with the four string fields. */
export const readRecord = Effect.fn("SizeCompare.readRecord")(function*(path: string) {
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs.readFileString(path).pipe(
    Effect.mapError((error) => new RecordFileError({ path, reason: `cannot read the file (${error.message})` }))
  )
  const json = yield* Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: (error) =>
      new RecordFileError({
        path,
        reason: `not valid JSON (${error instanceof Error ? error.message : String(error)})`
      })
  })
  return yield* decodeRecord(json).pipe(
    Effect.mapError((error) =>
      new RecordFileError({ path, reason: `not a metadata record: ${describeParseError(error)}` })
    )
  )
})

const file = Options.file("file").pipe(
  Options.withDescription(
    "a JSON file holding {\"id\",\"title\",\"description\",\"director\"} (all strings) to measure instead of the sample record"
  ),
  Options.optional
)

export const command = Command.make("sizecompare", { file }, ({ file }) =>
  Effect.gen(function*() {
    const record = yield* Option.match(file, { onNone: () => Effect.succeed(sampleRecord), onSome: readRecord })
    yield* Console.log(formatSizes(sizes(record)))
  })).pipe(
    Command.withDescription(
      "Prints the size in bytes of one movie metadata record encoded as JSON, XML and protobuf, and each size relative to JSON."
    )
  )

/** Runs the command on `process.argv`-style arguments (the first two are skipped). */
export const run = Command.run(command, { name: "sizecompare", version: "0.1.0" })
