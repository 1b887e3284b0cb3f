/**
 * A service (or the dev stack) that cannot start because of its settings says
 * which variables to fix, in one JSON line like all its others, and exits 1.
 */
import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { RatingRpcs, RatingValue, RecordId, UserId } from "@movieapp/contracts/Rating"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
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
    },
    {
      name: "a ranking prior out of range (rating)",
      main: "packages/rating/src/main.ts",
      env: { RANKING_PRIOR_WEIGHT: "0", RANKING_PRIOR_MEAN: "11" },
      problems: [
        "RANKING_PRIOR_WEIGHT (ranking.prior.weight in CONFIG_FILE): Expected a positive number of ratings",
        "RANKING_PRIOR_MEAN (ranking.prior.mean in CONFIG_FILE): Expected a rating from 1 to 10"
      ]
    }
  ]
  for (const { env, main, name, problems } of cases.map((c) => ({ main: "packages/metadata/src/main.ts", ...c }))) {
    it.live(
      `${name}: the process exits 1 with one JSON error line naming each variable to fix`,
      () =>
        Effect.gen(function*() {
          const service = yield* ServiceProcess.start(main, {
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

describe("start with good settings", () => {
  it.live(
    "RANKING_PRIOR_WEIGHT and RANKING_PRIOR_MEAN: the running rating service ranks with that prior",
    () =>
      Effect.gen(function*() {
        const rating = yield* ServiceProcess.startService("rating", {
          ...(yield* Tokens.serviceEnv),
          SERVER_HOST: "127.0.0.1",
          SERVER_GRPC_PORT: "0",
          SERVER_HTTP_PORT: "0",
          SERVER_RPC_PORT: "0",
          RANKING_PRIOR_WEIGHT: "2",
          RANKING_PRIOR_MEAN: "1"
        })
        const client = yield* RpcTransport.makeClient(RatingRpcs, { host: rating.host, port: rating.port })
        const key = {
          recordId: RecordId.make("prior-1"),
          recordType: "movie" as const,
          userId: UserId.make("ann")
        }
        yield* client.PutRating({ ...key, value: RatingValue.make(10) }, { headers: yield* Tokens.user("ann") })
        const [ranked] = yield* client.ListRanked({ recordType: "movie", minCount: 1, limit: 1 })
        // (C·m + sum) / (C + count) = (2·1 + 10) / 3; the defaults (10, 5.5) would give 65 / 11.
        assert.strictEqual(ranked?.score, 4)
      }).pipe(Effect.scoped, Effect.provide(Tokens.layer)),
    60_000
  )
})

describe("secure by default: writes need a key, or AUTH=disabled said out loud", () => {
  for (const service of ["metadata", "rating"] as const) {
    it.live(
      `${service} without an auth configuration: exits 1 naming the settings, before it listens`,
      () =>
        Effect.gen(function*() {
          const process = yield* ServiceProcess.start(`packages/${service}/src/main.ts`, {
            SERVER_HOST: "127.0.0.1",
            SERVER_GRPC_PORT: "0",
            SERVER_HTTP_PORT: "0",
            SERVER_RPC_PORT: "0"
          })
          const { code } = yield* process.exited
          assert.strictEqual(code, 1)
          const errors = process.logs().filter((line) => line.logLevel === "ERROR")
          assert.strictEqual(errors.length, 1, JSON.stringify(process.logs()))
          assert.strictEqual(
            String(errors[0]!.cause),
            "ConfigurationError: invalid configuration: AUTH (auth in CONFIG_FILE): writes need a key to verify tokens: " +
              "set AUTH_PUBLIC_KEY_FILE (a PEM public key) or AUTH_JWKS_URL, with AUTH_ISSUER and AUTH_AUDIENCE; " +
              "or set AUTH=disabled to accept writes from anyone"
          )
          assert.isUndefined(process.logs().find((line) => line.message === "listening"))
        }).pipe(Effect.scoped),
      60_000
    )
  }

  it.live(
    "AUTH=disabled: the service starts, warns once, and takes writes without a token",
    () =>
      Effect.gen(function*() {
        const service = yield* ServiceProcess.startService("rating", {
          AUTH: "disabled",
          SERVER_HOST: "127.0.0.1",
          SERVER_GRPC_PORT: "0",
          SERVER_HTTP_PORT: "0",
          SERVER_RPC_PORT: "0"
        })
        const warnings = service.logs().filter((line) => line.logLevel === "WARN")
        assert.deepStrictEqual(warnings.map((line) => line.message), [
          "AUTH=disabled: writes are accepted from anyone, without a token; never run so where others can reach it"
        ])
        const answer = yield* Effect.promise(() =>
          fetch(`http://127.0.0.1:${service.httpPort}/rating`, {
            method: "PUT",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ recordId: "open", recordType: "movie", userId: "anyone", value: 5 })
          })
        )
        assert.strictEqual(answer.status, 200)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "a key file that is no usable key: exits 1 naming the file and why, without its contents",
    () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const path = yield* fs.makeTempFileScoped({ suffix: ".pem" })
        yield* fs.writeFileString(path, "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n")
        const process = yield* ServiceProcess.start("packages/metadata/src/main.ts", {
          AUTH_PUBLIC_KEY_FILE: path,
          AUTH_ISSUER: "issuer",
          AUTH_AUDIENCE: "audience",
          SERVER_HOST: "127.0.0.1",
          SERVER_GRPC_PORT: "0",
          SERVER_HTTP_PORT: "0",
          SERVER_RPC_PORT: "0"
        })
        assert.strictEqual((yield* process.exited).code, 1)
        const errors = process.logs().filter((line) => line.logLevel === "ERROR")
        assert.strictEqual(
          String(errors[0]?.cause),
          `KeyFileError: cannot use AUTH_PUBLIC_KEY_FILE ${path}: not a PEM public key`
        )
      }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)),
    60_000
  )
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
