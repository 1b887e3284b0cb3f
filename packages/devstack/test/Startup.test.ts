/**
 * A service that cannot start because of its settings says which variables to
 * fix, in one JSON line like all its others, and exits 1.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ServiceProcess from "@movieapp/testkit/ServiceProcess"
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
      problems: ["MYSQL_USER (mysql.user in CONFIG_FILE) is required and not set", "MYSQL_PASSWORD (mysql.password in CONFIG_FILE) is required and not set"]
    }
  ]
  for (const { env, name, problems } of cases) {
    it.live(`${name}: the process exits 1 with one JSON error line naming each variable to fix`, () =>
      Effect.gen(function* () {
        const service = yield* ServiceProcess.start("packages/metadata/src/main.ts", {
          SERVER_HOST: "127.0.0.1",
          SERVER_GRPC_PORT: "0",
          SERVER_HTTP_PORT: "0",
          ...env
        })
        const { code } = yield* service.exited
        assert.strictEqual(code, 1)
        const errors = service.logs().filter((line) => line.logLevel === "ERROR")
        assert.strictEqual(errors.length, 1, JSON.stringify(service.logs()))
        assert.strictEqual(String(errors[0]!.cause), `ConfigurationError: invalid configuration: ${problems.join("; ")}`)
      }).pipe(Effect.scoped), 60_000)
  }
})
