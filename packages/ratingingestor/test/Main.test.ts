/**
 * The ingestor's composition root as a process: settings it reads from the
 * environment besides its options (tracing, Kafka's TLS files) fail it with their
 * name, as the services do, before anything is published.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

const repo = fileURLToPath(new URL("../../..", import.meta.url))

/** Runs the ingestor's main.ts with `env` added; its exit code and stderr. */
const ingestor = (env: Record<string, string>, args: ReadonlyArray<string>) =>
  Effect.async<{ readonly code: number; readonly stderr: string }>((resume) => {
    execFile(
      process.execPath,
      ["--conditions=source", "--import", "tsx", "packages/ratingingestor/src/main.ts", ...args],
      { cwd: repo, env: { ...process.env, ...env }, timeout: 60_000 },
      (error, _stdout, stderr) => resume(Effect.succeed({ code: error ? Number(error.code ?? 1) : 0, stderr }))
    )
  })

describe("ratingingestor main", () => {
  it.live("an invalid tracing setting stops it with the key named, before it publishes", () =>
    Effect.gen(function*() {
      // No broker listens there: the run must end before any publishing is tried.
      const args = ["--kafka-brokers", "127.0.0.1:1", "--generate", "1"]
      for (
        const [env, key, reason] of [
          [{ TRACING_ENDPOINT: "" }, "tracing.endpoint", "http(s) URL"],
          [{ TRACING_ENDPOINT: "otel-collector:4318" }, "tracing.endpoint", "http(s) URL"],
          [{ TRACING_SAMPLE_RATIO: "10%" }, "TRACING.SAMPLE_RATIO", "number"]
        ] as const
      ) {
        const { code, stderr } = yield* ingestor(env, args)
        assert.strictEqual(code, 1, JSON.stringify(env))
        assert.include(stderr, key, JSON.stringify(env))
        assert.include(stderr, reason, JSON.stringify(env))
        assert.notInclude(stderr, "published", JSON.stringify(env))
      }
    }), 120_000)

  it.live(
    "a Kafka TLS file that cannot be read stops it with the setting and the path named",
    () =>
      Effect.gen(function*() {
        const missing = "/nonexistent/movieapp-kafka-ca.pem"
        const { code, stderr } = yield* ingestor(
          { KAFKA_TLS_CA_FILE: missing },
          ["--kafka-brokers", "127.0.0.1:1", "--generate", "1"]
        )
        assert.strictEqual(code, 1, stderr)
        assert.include(stderr, `KAFKA_TLS_CA_FILE (${missing}): cannot read it`)
        assert.notInclude(stderr, "published")
      }),
    60_000
  )
})
