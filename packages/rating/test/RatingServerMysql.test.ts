/**
 * The rating service on a real MariaDB, through real gRPC: data survives a
 * restart; a database that cannot be reached gives UNAVAILABLE (never driver
 * text) and health NOT_SERVING while the service keeps running, and it recovers
 * by itself (SERVING again); its /metrics shows the database pool; refused
 * credentials stop the process at start with one line saying what to fix.
 */
import { assert, describe, it } from "@effect/vitest"
import type { DevelopmentTokens } from "@movieapp/platform/DevelopmentTokens"
import * as DiscoveryMemory from "@movieapp/platform/DiscoveryMemory"
import * as Mysql from "@movieapp/platform/Mysql"
import * as Readiness from "@movieapp/platform/Readiness"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import * as PrometheusText from "@movieapp/testkit/PrometheusText"
import * as ServiceProcess from "@movieapp/testkit/ServiceProcess"
import * as TcpProxy from "@movieapp/testkit/TcpProxy"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Duration, Effect, Layer, Logger, LogLevel, Redacted, Schedule } from "effect"
import * as RatingEventSourceInProcess from "../src/adapters/RatingEventSourceInProcess.js"
import * as RatingRepositoryMysql from "../src/adapters/RatingRepositoryMysql.js"
import * as RatingServer from "../src/RatingServer.js"
import { testServerConfig } from "./TestServerConfig.js"

const UNAVAILABLE = 14

const server = (database: Mysql.MysqlConfig) =>
  RatingServer.layer(testServerConfig).pipe(
    Layer.provide([
      RatingRepositoryMysql.layer.pipe(Layer.provide(Mysql.layer(database, RatingRepositoryMysql.migrations))),
      RatingEventSourceInProcess.layer,
      DiscoveryMemory.layer()
    ]),
    Layer.provideMerge(Tokens.layerWriteAccess),
    Layer.provide(Readiness.layer),
    Layer.provide(Logger.minimumLogLevel(LogLevel.Error))
  )

/** Runs `f` with a v1 client of a freshly started rating service on `database`, then stops the service. */
const withService = <A, E>(
  database: Mysql.MysqlConfig,
  f: (client: v1Rating.RatingServiceClient) => Effect.Effect<A, E, RatingServer.Ports | DevelopmentTokens>
) =>
  Effect.scoped(
    Effect.gen(function*() {
      const { grpc } = yield* RatingServer.Ports
      return yield* f(yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${grpc}`))
    }).pipe(Effect.provide(server(database)))
  )

const key = { recordId: "persisted", recordType: "movie" }

describe.runIf(await MariaDb.available())("rating service on MariaDB", () => {
  it.live("data survives a restart of the service", () =>
    Effect.gen(function*() {
      const database = yield* MariaDb.TestDatabase
      yield* withService(database, (client) =>
        Effect.gen(function*() {
          const a = { metadata: yield* Tokens.user("a") }
          const b = { metadata: yield* Tokens.user("b") }
          yield* Grpc.call(Grpc.method(client, "putRating"), { ...key, userId: "a", ratingValue: 4 }, a)
          yield* Grpc.call(Grpc.method(client, "putRating"), { ...key, userId: "b", ratingValue: 9 }, b)
          yield* Grpc.call(Grpc.method(client, "putRating"), { ...key, userId: "a", ratingValue: 2 }, a)
        }))
      const after = yield* withService(database, (client) => Grpc.call(Grpc.method(client, "getAggregatedRating"), key))
      assert.deepStrictEqual(after, { ratingValue: 5.5, ratingsCount: 2 })
    }).pipe(Effect.provide(MariaDb.layerTestDatabase)), 60_000)

  it.live(
    "database unreachable: UNAVAILABLE without driver text and NOT_SERVING; the service stays up and recovers by itself",
    () =>
      Effect.gen(function*() {
        const database = yield* MariaDb.TestDatabase
        const proxy = yield* TcpProxy.make({ host: database.host, port: database.port })
        yield* withService(
          { ...database, host: "127.0.0.1", port: proxy.port, connectTimeout: Duration.seconds(1) },
          (client) =>
            Effect.gen(function*() {
              const get = Grpc.call(Grpc.method(client, "getAggregatedRating"), key)
              const a = { metadata: yield* Tokens.user("a") }
              yield* Grpc.call(Grpc.method(client, "putRating"), { ...key, userId: "a", ratingValue: 6 }, a)
              const ports = yield* RatingServer.Ports
              const health = (service: string) => Grpc.healthCheck(`127.0.0.1:${ports.grpc}`, service)
              assert.strictEqual(yield* health(""), "SERVING")

              yield* proxy.cut
              const read = yield* Effect.flip(get)
              assert.strictEqual(read.code, UNAVAILABLE)
              assert.strictEqual(read.details, "rating storage unavailable: the database cannot be reached")
              const write = yield* Effect.flip(
                Grpc.call(Grpc.method(client, "putRating"), { ...key, userId: "b", ratingValue: 10 }, {
                  metadata: yield* Tokens.user("b")
                })
              )
              assert.strictEqual(write.code, UNAVAILABLE)
              // The gRPC edge still answers, and says it cannot serve: for the server and each of its services.
              const becomes = (status: string) =>
                Effect.forEach(["", "RatingService", "movieapp.v1.RatingService"], (service) =>
                  health(service).pipe(
                    Effect.repeat({ until: (s) => s === status, schedule: Schedule.spaced("50 millis") }),
                    Effect.timeout("10 seconds")
                  ))
              yield* becomes("NOT_SERVING")

              yield* proxy.restore
              yield* becomes("SERVING")
              // The pool reconnects on its own; the first calls after the fault may still meet a dead connection.
              const recovered = yield* get.pipe(Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 50 }))
              // The write that failed during the outage left nothing behind.
              assert.deepStrictEqual(recovered, { ratingValue: 6, ratingsCount: 1 })
            })
        )
      }).pipe(Effect.scoped, Effect.provide(MariaDb.layerTestDatabase)),
    60_000
  )

  it.live("its /metrics reports the database pool", () =>
    Effect.gen(function*() {
      const database = yield* MariaDb.TestDatabase
      yield* withService({ ...database, maxConnections: 4 }, () =>
        Effect.gen(function*() {
          const { http } = yield* RatingServer.Ports
          const text = yield* Effect.promise(() =>
            fetch(`http://127.0.0.1:${http}/metrics`).then((response) => response.text())
          )
          const families = PrometheusText.parse(text)
          const pool = { pool_name: `${database.host}:${database.port}/${database.database}` }
          assert.strictEqual(PrometheusText.value(families, "db_client_connection_max", pool), 4)
          // The migrations at start asked for connections.
          assert.isAtLeast(PrometheusText.value(families, "db_client_connection_wait_time_seconds_count", pool)!, 1)
          assert.strictEqual(PrometheusText.value(families, "db_client_connection_pending_requests", pool), 0)
        }))
    }).pipe(Effect.provide(MariaDb.layerTestDatabase)), 60_000)

  it.live(
    "refused credentials: the process exits 1 at start, with one line saying what to fix",
    () =>
      Effect.gen(function*() {
        const database = yield* MariaDb.TestDatabase
        const service = yield* ServiceProcess.start("packages/rating/src/main.ts", {
          ...(yield* Tokens.serviceEnv),
          REPOSITORY: "mysql",
          MYSQL_HOST: database.host,
          MYSQL_PORT: String(database.port),
          MYSQL_DATABASE: database.database,
          MYSQL_USER: database.user,
          MYSQL_PASSWORD: `not-${Redacted.value(database.password)}`,
          SERVER_HOST: "127.0.0.1",
          SERVER_GRPC_PORT: "0",
          SERVER_HTTP_PORT: "0"
        })
        const { code } = yield* service.exited
        assert.strictEqual(code, 1)
        const errors = service.logs().filter((line) => line.logLevel === "ERROR")
        assert.strictEqual(errors.length, 1, JSON.stringify(service.logs()))
        const reported = String(errors[0]!.cause)
        assert.isTrue(
          reported.startsWith(
            `MysqlStartupError: MySQL ${database.host}:${database.port} database "${database.database}": the server refused the credentials ` +
              `(ER_ACCESS_DENIED_ERROR: Access denied for user '${database.user}'@`
          ),
          reported
        )
        assert.isTrue(reported.endsWith("(using password: YES)); check MYSQL_USER and MYSQL_PASSWORD"), reported)
      }).pipe(Effect.scoped, Effect.provide([MariaDb.layerTestDatabase, Tokens.layer])),
    60_000
  )
})
