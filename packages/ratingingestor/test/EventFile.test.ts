import { NodeFileSystem } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as EventFile from "../src/EventFile.js"
import { eventFile, remove } from "./fixtures.js"

const valid = {
  userId: "105",
  recordId: "1",
  recordType: "movie",
  value: 5,
  providerId: "test-provider",
  eventType: "put"
}

const readFailure = (content: unknown) =>
  Effect.flatMap(
    eventFile(content),
    (path) => Effect.flip(EventFile.read(path)).pipe(Effect.map((error) => ({ path, error })))
  )

layer(NodeFileSystem.layer)("EventFile", (it) => {
  it.scoped("reads the original sample shape, keeping file order", () =>
    Effect.gen(function*() {
      const path = yield* eventFile([valid, { ...valid, recordId: "2", value: 4 }, remove("105", "3")])
      const { invalid, valid: events } = yield* EventFile.read(path)
      assert.deepStrictEqual(invalid, [])
      assert.deepStrictEqual(events.map((e) => [e.eventType, e.recordId]), [["put", "1"], ["put", "2"], [
        "delete",
        "3"
      ]])
      assert.strictEqual(events[0]?.providerId, "test-provider")
    }))

  it.scoped("an empty array has no events", () =>
    Effect.gen(function*() {
      const contents = yield* EventFile.read(yield* eventFile([]))
      assert.deepStrictEqual(contents, { valid: [], invalid: [] })
    }))

  it.scoped("malformed JSON names the file and the parse error", () =>
    Effect.gen(function*() {
      const { error, path } = yield* readFailure(`[{"userId": "105",`)
      assert.strictEqual(error._tag, "EventFileError")
      assert.include(error.message, path)
      assert.match(error.message, /not valid JSON \(.+\)/)
    }))

  it.scoped("a top level null, number or string is rejected", () =>
    Effect.gen(function*() {
      for (const [content, found] of [["null", "null"], ["42", "a number"], [`"x"`, "a string"]] as const) {
        const { error } = yield* readFailure(content)
        assert.match(error.message, new RegExp(`found ${found}$`))
      }
    }))

  it.scoped("a top level object is rejected, naming the file", () =>
    Effect.gen(function*() {
      const { error, path } = yield* readFailure(valid)
      assert.strictEqual(error.message, `${path}: expected a JSON array of rating events, found an object`)
    }))

  it.scoped("a missing file is named", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(EventFile.read("/nonexistent/ratings.json"))
      assert.strictEqual(error.message, "/nonexistent/ratings.json: no such file")
    }))

  it.scoped("ids must be well-formed Unicode without control characters or U+FFFD, as on every other wire", () =>
    Effect.gen(function*() {
      // Escapes written as JSON text: a lone surrogate, NUL, and bytes a reader could not decode.
      const path = yield* eventFile(`[
        {"userId":"\\ud800","recordId":"1","recordType":"movie","value":5,"eventType":"put"},
        {"userId":"a","recordId":"1\\u0000b","recordType":"movie","value":5,"eventType":"put"},
        {"userId":"a","recordId":"1","recordType":"movie","value":5,"providerId":"\\ufffd","eventType":"put"},
        {"userId":"😀","recordId":"1","recordType":"movie","value":5,"eventType":"put"}
      ]`)
      const { invalid, valid: events } = yield* EventFile.read(path)
      assert.deepStrictEqual(invalid, [
        { index: 0, reason: "userId: must be well-formed Unicode (it holds a lone surrogate)" },
        { index: 1, reason: "recordId: must not contain control characters" },
        { index: 2, reason: "providerId: must not contain U+FFFD (the replacement character)" }
      ])
      assert.deepStrictEqual(events.map((e) => e.userId), ["😀"])
    }))

  it.scoped("reports every bad record with its index and field", () =>
    Effect.gen(function*() {
      const { value: _value, ...withoutValue } = valid
      const records = [
        valid,
        withoutValue,
        { ...valid, value: 0 },
        { ...valid, value: 11 },
        { ...valid, value: 2.5 },
        { ...valid, recordType: "book" },
        { ...valid, userId: "" },
        { ...valid, eventType: "upsert" },
        { ...withoutValue, eventType: "delete" },
        42,
        { ...valid, recordId: "   padded" }
      ]
      const { invalid, valid: events } = yield* EventFile.read(yield* eventFile(records))
      assert.deepStrictEqual(invalid.map(({ index }) => index), [1, 2, 3, 4, 5, 6, 7, 9, 10])
      const reasons = new Map(invalid.map(({ index, reason }) => [index, reason]))
      assert.strictEqual(reasons.get(1), "value: is missing")
      assert.strictEqual(reasons.get(2), "value: must be an integer from 1 to 10")
      assert.strictEqual(reasons.get(3), "value: must be an integer from 1 to 10")
      assert.strictEqual(reasons.get(4), "value: must be an integer from 1 to 10")
      assert.strictEqual(reasons.get(5), `recordType: must be one of "movie", "tv"`)
      assert.strictEqual(reasons.get(6), "userId: must not be empty")
      assert.match(reasons.get(7) ?? "", /^eventType: .*"upsert"/)
      assert.strictEqual(reasons.get(9), "must be a JSON object, found a number")
      assert.strictEqual(reasons.get(10), "recordId: must not start or end with whitespace")
      // A delete needs no value.
      assert.deepStrictEqual(events.map((e) => [e.eventType, e.value]), [["put", 5], ["delete", undefined]])
    }))
})
