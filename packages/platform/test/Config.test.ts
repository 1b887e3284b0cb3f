import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Config as ConfigFx, ConfigProvider, Duration, Effect, Layer, LogLevel } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Config from "../src/Config.js"

const server = Config.server({ grpcPort: 8081, httpPort: 8091 })

/** Runs `effect` with `env` as the process environment, restoring it afterwards. */
const withEnv = (env: Record<string, string>) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const saved = { ...process.env }
      Object.assign(process.env, env)
      return saved
    }),
    () => effect,
    (saved) =>
      Effect.sync(() => {
        process.env = saved
      })
  )

describe("Config", () => {
  it.effect("defaults", () =>
    Effect.gen(function*() {
      const config = yield* server
      assert.strictEqual(config.grpcPort, 8081)
      assert.strictEqual(config.httpPort, 8091)
      assert.strictEqual(config.host, "0.0.0.0")
      assert.notStrictEqual(config.advertiseHost, "localhost")
      assert.notStrictEqual(config.advertiseHost, "0.0.0.0")
      assert.deepStrictEqual(config.shutdownTimeout, Duration.seconds(10))
      assert.deepStrictEqual((yield* Config.log).level, LogLevel.Info)
    }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map()).pipe(ConfigProvider.constantCase))))

  it.effect("an invalid value fails naming the variable", () =>
    Effect.gen(function*() {
      const error = Config.ConfigurationError.fromConfigError(yield* Effect.flip(server))
      assert.deepStrictEqual(error.problems, [
        "SERVER_GRPC_PORT (server.grpcPort in CONFIG_FILE): Expected an integer value but received \"eighty\""
      ])
      assert.strictEqual(error.message, `invalid configuration: ${error.problems[0]}`)
    }).pipe(
      Effect.withConfigProvider(
        ConfigProvider.fromMap(new Map([["SERVER_GRPC_PORT", "eighty"]]), { pathDelim: "_" }).pipe(
          ConfigProvider.constantCase
        )
      )
    ))

  it.effect("validation failures and missing settings are named as variables too, all of them", () =>
    Effect.gen(function*() {
      const settings = ConfigFx.all({
        server,
        user: ConfigFx.string("user").pipe(ConfigFx.nested("mysql")),
        maxConnections: ConfigFx.integer("maxConnections").pipe(ConfigFx.nested("mysql"))
      })
      const error = Config.ConfigurationError.fromConfigError(
        yield* Effect.flip(settings.pipe(
          Effect.withConfigProvider(
            ConfigProvider.fromMap(new Map([["SERVER_HTTP_PORT", "70000"], ["MYSQL_MAX_CONNECTIONS", "ten"]]), {
              pathDelim: "_"
            }).pipe(ConfigProvider.constantCase)
          )
        ))
      )
      assert.sameMembers([...error.problems], [
        "SERVER_HTTP_PORT (server.httpPort in CONFIG_FILE): Expected a port number from 0 to 65535",
        "MYSQL_USER (mysql.user in CONFIG_FILE) is required and not set",
        "MYSQL_MAX_CONNECTIONS (mysql.maxConnections in CONFIG_FILE): Expected an integer value but received \"ten\""
      ])
    }))

  it.effect("port 0 (any free port) is allowed, ports above 65535 are not", () =>
    Effect.gen(function*() {
      const config = (env: Record<string, string>) =>
        server.pipe(
          Effect.withConfigProvider(
            ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }).pipe(ConfigProvider.constantCase)
          )
        )
      assert.strictEqual((yield* config({ SERVER_GRPC_PORT: "0" })).grpcPort, 0)
      assert.include(
        String(yield* Effect.flip(config({ SERVER_HTTP_PORT: "70000" }))),
        "httpPort: \"Expected a port number from 0 to 65535"
      )
    }))

  it.effect("request size limits: 64 KiB for client requests and 4 MiB for Effect RPC by default; set in bytes, a bad one named", () =>
    Effect.gen(function*() {
      const config = (env: Record<string, string>) =>
        server.pipe(
          Effect.withConfigProvider(
            ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }).pipe(ConfigProvider.constantCase)
          )
        )
      const defaults = yield* config({})
      assert.deepStrictEqual([defaults.maxRequestBytes, defaults.maxRpcMessageBytes], [65536, 4194304])
      const set = yield* config({ SERVER_MAX_REQUEST_BYTES: "1048576", SERVER_MAX_RPC_MESSAGE_BYTES: "16777216" })
      assert.deepStrictEqual([set.maxRequestBytes, set.maxRpcMessageBytes], [1048576, 16777216])
      const error = Config.ConfigurationError.fromConfigError(
        yield* Effect.flip(config({ SERVER_MAX_REQUEST_BYTES: "0", SERVER_MAX_RPC_MESSAGE_BYTES: "4MB" }))
      )
      assert.sameMembers([...error.problems], [
        "SERVER_MAX_REQUEST_BYTES (server.maxRequestBytes in CONFIG_FILE): Expected a number of bytes from 1 to 2147483647",
        "SERVER_MAX_RPC_MESSAGE_BYTES (server.maxRpcMessageBytes in CONFIG_FILE): Expected an integer value but received \"4MB\""
      ])
    }))

  it.effect("the advertised address: never a wildcard; the port only when set", () =>
    Effect.gen(function*() {
      const config = (env: Record<string, string>) =>
        server.pipe(
          Effect.withConfigProvider(
            ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }).pipe(ConfigProvider.constantCase)
          )
        )
      assert.include(
        String(yield* Effect.flip(config({ SERVER_ADVERTISE_HOST: "0.0.0.0" }))),
        "Expected an address others can dial, not a wildcard"
      )
      const advertised = yield* config({ SERVER_ADVERTISE_HOST: "192.0.2.3", SERVER_ADVERTISE_PORT: "18092" })
      assert.strictEqual(advertised.advertiseHost, "192.0.2.3")
      assert.strictEqual(advertised.advertisePort, 18092)
      assert.isUndefined((yield* config({})).advertisePort)
    }))

  it.effect("environment over the YAML file named by CONFIG_FILE", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "movieapp-config-"))
      const file = join(dir, "service.yaml")
      writeFileSync(
        file,
        "server:\n  grpcPort: 9001\n  httpPort: 9002\n  advertiseHost: from-yaml\nlog:\n  level: debug\n"
      )
      const read = Effect.all({ server, log: Config.log }).pipe(
        Effect.provide(Config.layerProvider.pipe(Layer.provide(NodeFileSystem.layer)))
      )
      const { server: s, log } = yield* read.pipe(withEnv({ CONFIG_FILE: file, SERVER_HTTP_PORT: "9100" }))
      assert.strictEqual(s.grpcPort, 9001) // from the file
      assert.strictEqual(s.httpPort, 9100) // the environment wins
      assert.strictEqual(s.advertiseHost, "from-yaml")
      assert.deepStrictEqual(log.level, LogLevel.Debug)
    }))

  it.effect("a missing config file is a clear error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.provide(server, Config.layerProvider.pipe(Layer.provide(NodeFileSystem.layer))).pipe(
          withEnv({ CONFIG_FILE: "/nonexistent/service.yaml" })
        )
      )
      assert.include(String(error), "cannot read config file /nonexistent/service.yaml")
    }))
})
