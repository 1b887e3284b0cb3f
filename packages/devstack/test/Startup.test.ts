/**
 * A service (or the dev stack) that cannot start because of its settings says
 * which variables to fix, in one JSON line like all its others, and exits 1.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Ports from "@movieapp/testkit/Ports"
import * as ServiceProcess from "@movieapp/testkit/ServiceProcess"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Effect } from "effect"

describe("start with bad settings", () => {
  const cases = [
    {
      name: "an invalid value",
      env: { SERVER_GRPC_PORT: "eighty" },
      problems: ["SERVER_GRPC_PORT (server.grpcPort in CONFIG_FILE): Expected an integer value but received \"eighty\""]
    },
    {
      name: "missing settings, all of them",
      env: { REPOSITORY: "mysql" },
      problems: [
        "MYSQL_USER (mysql.user in CONFIG_FILE) is required and not set",
        "MYSQL_PASSWORD (mysql.password in CONFIG_FILE) is required and not set"
      ]
    }
  ]
  for (const { env, name, problems } of cases) {
    it.live(
      `${name}: the process exits 1 with one JSON error line naming each variable to fix`,
      () =>
        Effect.gen(function*() {
          const service = yield* ServiceProcess.start("packages/metadata/src/main.ts", {
            ...(yield* Tokens.serviceEnv),
            SERVER_HOST: "127.0.0.1",
            SERVER_GRPC_PORT: "0",
            SERVER_HTTP_PORT: "0",
            ...env
          })
          const { code } = yield* service.exited
          assert.strictEqual(code, 1)
          const errors = service.logs().filter((line) => line.logLevel === "ERROR")
          assert.strictEqual(errors.length, 1, JSON.stringify(service.logs()))
          assert.strictEqual(
            String(errors[0]!.cause),
            `ConfigurationError: invalid configuration: ${problems.join("; ")}`
          )
        }).pipe(Effect.scoped, Effect.provide(Tokens.layer)),
      60_000
    )
  }
})

describe("start with a port in use", () => {
  /** The one ERROR line of a process that exited 1, and that it wrote nothing else of note (stderr, other errors). */
  const failedOnce = (process: ServiceProcess.ServiceProcess) =>
    Effect.gen(function*() {
      const { code } = yield* process.exited
      assert.strictEqual(code, 1)
      const errors = process.logs().filter((line) => line.logLevel === "ERROR")
      assert.strictEqual(errors.length, 1, JSON.stringify(process.logs()))
      // grpc-js's own account of the failed bind (`E No address added...`) is not repeated on stderr.
      assert.deepStrictEqual(process.stderr(), [])
      return String(errors[0]!.cause)
    })

  it.live(
    "a service: one line naming the port and SERVER_GRPC_PORT, the variable that moves it",
    () =>
      Effect.gen(function*() {
        const taken = yield* Ports.held
        const service = yield* ServiceProcess.start("packages/metadata/src/main.ts", {
          ...(yield* Tokens.serviceEnv),
          SERVER_HOST: "127.0.0.1",
          SERVER_GRPC_PORT: String(taken),
          SERVER_HTTP_PORT: "0",
          SERVER_RPC_PORT: "0"
        })
        assert.strictEqual(
          yield* failedOnce(service),
          `ListenError: cannot listen for gRPC on 127.0.0.1:${taken}: the port is in use; set SERVER_GRPC_PORT to a free port (0 picks one)`
        )
      }).pipe(Effect.scoped, Effect.provide(Tokens.layer)),
    60_000
  )

  it.live(
    "the dev stack (npm start): one line naming the port and its own variable, METADATA_HTTP_PORT",
    () =>
      Effect.gen(function*() {
        const taken = yield* Ports.held
        const stack = yield* ServiceProcess.start("packages/devstack/src/main.ts", {
          SAMPLE_DATA: "false",
          ...Object.fromEntries(
            ["METADATA", "RATING", "MOVIE"].flatMap((s) => ["GRPC", "HTTP", "RPC"].map((p) => [`${s}_${p}_PORT`, "0"]))
          ),
          METADATA_HTTP_PORT: String(taken)
        })
        assert.strictEqual(
          yield* failedOnce(stack),
          `ListenError: cannot listen for HTTP on 127.0.0.1:${taken}: the port is in use; set METADATA_HTTP_PORT to a free port (0 picks one)`
        )
      }).pipe(Effect.scoped),
    60_000
  )
})
