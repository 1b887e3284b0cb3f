/** Rating events and event files for the ingestor's tests. */
import { FileSystem } from "@effect/platform"
import { RatingEvent } from "@movieapp/contracts/Rating"
import { Effect, Schema } from "effect"

const decode = Schema.decodeUnknownSync(RatingEvent)

export const put = (userId: string, recordId: string, value: number): RatingEvent =>
  decode({ eventType: "put", userId, recordId, recordType: "movie", value })

export const remove = (userId: string, recordId: string): RatingEvent =>
  decode({ eventType: "delete", userId, recordId, recordType: "movie" })

/** `count` valid put events from distinct users, in order. */
export const puts = (count: number, prefix = "user"): ReadonlyArray<RatingEvent> =>
  Array.from({ length: count }, (_, i) => put(`${prefix}-${i}`, "1", (i % 10) + 1))

/** Writes `content` (a string as is, anything else as JSON) to a file that lives as long as the scope. */
export const eventFile = (content: unknown) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const directory = yield* fs.makeTempDirectoryScoped({ prefix: "ratingingestor-" })
    const path = `${directory}/events.json`
    yield* fs.writeFileString(path, typeof content === "string" ? content : JSON.stringify(content))
    return path
  })
