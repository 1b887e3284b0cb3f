/** Log lines are JSON objects; one written inside a span names that span and its trace. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import * as Logging from "../src/Logging.js"

/** Runs `effect` with the service logger writing into an array instead of the console. */
const capture = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.map(Logging.jsonLogger, (line) => void lines.push(line))
    const result = yield* effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    return { result, entries: lines.map((line) => JSON.parse(line) as Record<string, unknown>) }
  })

describe("Logging", () => {
  it.effect("a line written in a span carries its trace and span ids", () =>
    Effect.gen(function*() {
      const { result: span, entries } = yield* capture(
        Effect.logWarning("database call failed").pipe(
          Effect.annotateLogs("db.host", "127.0.0.1:3306"),
          Effect.zipRight(Effect.currentSpan),
          Effect.withSpan("RatingRepository.aggregate")
        )
      )
      assert.strictEqual(entries.length, 1)
      assert.deepInclude(entries[0], {
        message: "database call failed",
        logLevel: "WARN",
        annotations: { "db.host": "127.0.0.1:3306" },
        traceId: span.traceId,
        spanId: span.spanId
      })
    }))

  it.effect("a line written outside any span has no trace ids, and stays valid JSON with awkward content", () =>
    Effect.gen(function*() {
      const { entries } = yield* capture(Effect.logInfo("quote \" and newline \n and } brace"))
      assert.strictEqual(entries[0]!.message, "quote \" and newline \n and } brace")
      assert.notProperty(entries[0], "traceId")
      assert.notProperty(entries[0], "spanId")
    }))
})
