/**
 * The command-line programs as people run them, through `npm run ingest` and
 * `npm run sizecompare` (compiled code, built when the sources changed): help
 * without colours when piped or with NO_COLOR, with them on a terminal; every
 * error line led by the program's name; and logs that fit where they go: JSON
 * lines when piped, only warnings (as plain lines) beside the progress bar and
 * summary on a terminal. In one file, so that only one build runs at a time.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Command from "@movieapp/testkit/Command"
import { Effect } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const ingest = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly terminal?: boolean } = {}
) => Command.run(["npm", "run", "--silent", "ingest", "--", ...args], options)
const sizecompare = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly terminal?: boolean } = {}
) => Command.run(["npm", "run", "--silent", "sizecompare", "--", ...args], options)

/** The lines of `text` that are not empty. */
const lines = (text: string) => text.split("\n").filter((line) => line.trim() !== "")

/** A file of one invalid rating event, for a run that skips it and publishes nothing (no service needed). */
const invalidEvents = Effect.acquireRelease(
  Effect.sync(() => {
    const directory = mkdtempSync(join(tmpdir(), "ratingingestor-cli-"))
    const file = join(directory, "events.json")
    writeFileSync(
      file,
      JSON.stringify([{ userId: "u", recordId: "r", recordType: "movie", value: 11, eventType: "put" }])
    )
    return { directory, file }
  }),
  ({ directory }) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
).pipe(Effect.map(({ file }) => ["--rating-address", "127.0.0.1:1", "--on-invalid", "skip", file]))

describe("command-line programs", () => {
  it("npm run ingest and npm run sizecompare start from compiled code, built first when the sources changed", () => {
    const scripts = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")).scripts
    assert.strictEqual(scripts.ingest, "tsc -b packages/ratingingestor && node packages/ratingingestor/dist/main.js")
    assert.strictEqual(scripts.sizecompare, "tsc -b packages/sizecompare && node packages/sizecompare/dist/main.js")
  })

  it.live("--help: no colours when piped or with NO_COLOR; colours on a terminal", () =>
    Effect.gen(function*() {
      for (const run of [ingest, sizecompare]) {
        const piped = yield* run(["--help"])
        assert.strictEqual(piped.code, 0, piped.stderr)
        assert.include(piped.stdout, "USAGE")
        assert.isFalse(Command.hasEscapes(piped.stdout), piped.stdout)
        const terminal = yield* run(["--help"], { terminal: true })
        assert.include(terminal.stdout, "USAGE")
        assert.isTrue(Command.hasEscapes(terminal.stdout))
        const noColor = yield* run(["--help"], { terminal: true, env: { NO_COLOR: "1" } })
        assert.include(noColor.stdout, "USAGE")
        assert.isFalse(Command.hasEscapes(noColor.stdout), noColor.stdout)
      }
    }), 180_000)

  it.live("every error line starts with the program's name: usage errors, failures", () =>
    Effect.gen(function*() {
      for (
        const [outcome, program, says] of [
          [
            yield* ingest(["--batch-size", "0", "--generate", "1"]),
            "ratingingestor",
            "--batch-size must be at least 1, got 0"
          ],
          [yield* ingest(["/no/such/events.json"]), "ratingingestor", "/no/such/events.json: no such file"],
          [yield* ingest([]), "ratingingestor", "give a file of rating events, or --generate N (see --help)"],
          [
            yield* sizecompare(["--file", "/no/such/record.json"]),
            "sizecompare",
            "/no/such/record.json: cannot read the file"
          ]
        ] as const
      ) {
        assert.strictEqual(outcome.code, 1, outcome.stderr)
        assert.strictEqual(outcome.stdout, "")
        assert.isNotEmpty(lines(outcome.stderr))
        for (const line of lines(outcome.stderr)) assert.isTrue(line.startsWith(`${program}: `), line)
        assert.include(outcome.stderr, `${program}: ${says}`)
      }
    }), 180_000)

  it.live(
    "piped, logs are JSON lines on stderr from Info up, and stdout holds the summary alone",
    () =>
      Effect.gen(function*() {
        const outcome = yield* ingest(yield* invalidEvents)
        assert.strictEqual(outcome.code, 0, outcome.stderr)
        assert.deepStrictEqual(lines(outcome.stdout).map((line) => line.replace(/ in .*/, "")), [
          "read 1, published 0, skipped 1"
        ])
        const logged = lines(outcome.stderr).map((line) => JSON.parse(line))
        assert.deepStrictEqual(logged.map((line) => [line.logLevel, line.message]), [
          ["WARN", "skipping invalid rating event"],
          ["INFO", "publishing rating events"],
          ["INFO", "published rating events"]
        ])
      }).pipe(Effect.scoped),
    180_000
  )

  it.live(
    "on a terminal, only warnings are logged, as plain lines led by the name; no JSON beside the progress bar and summary",
    () =>
      Effect.gen(function*() {
        const outcome = yield* ingest(yield* invalidEvents, { terminal: true, env: { NO_COLOR: "1" } })
        assert.strictEqual(outcome.code, 0, outcome.stdout)
        const shown = lines(outcome.stdout)
        assert.isFalse(shown.some((line) => line.trimStart().startsWith("{")), outcome.stdout)
        const warning = shown.find((line) =>
          line.startsWith("ratingingestor: warning: skipping invalid rating event (")
        )
        assert.isDefined(warning, outcome.stdout)
        assert.include(warning, "reason=value: must be an integer from 1 to 10")
        assert.include(warning, "index=0")
        assert.isTrue(shown.some((line) => line.includes("publishing [")), "the progress bar")
        assert.isTrue(shown.some((line) => line.startsWith("read 1, published 0, skipped 1")), "the summary")
        assert.isFalse(outcome.stdout.includes("publishing rating events"), "no Info lines")
      }).pipe(Effect.scoped),
    180_000
  )
})
