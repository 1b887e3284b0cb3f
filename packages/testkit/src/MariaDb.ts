/**
 * A real MariaDB for tests (scripts/mariadb.sh starts one). Each suite gets a
 * fresh database of its own, dropped afterwards, so suites run in parallel
 * without sharing rows. Without a server, suites are skipped locally with a
 * warning, and fail in CI (CI=true).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { MysqlClient } from "@effect/sql-mysql2"
import type { MysqlConfig } from "@movieapp/platform/Mysql"
import { Context, Duration, Effect, Layer, Redacted, type Scope } from "effect"
import * as RequiredServer from "./RequiredServer.js"

const host = process.env.MYSQL_HOST ?? "127.0.0.1"
const port = Number(process.env.MYSQL_PORT ?? 3306)
const user = process.env.MYSQL_USER ?? "movieapp"
const password = Redacted.make(process.env.MYSQL_PASSWORD ?? "movieapp")

/** Whether MariaDB suites should run: the server answers, or (outside CI) they are skipped. */
export const available = (): Promise<boolean> =>
  RequiredServer.available({ name: "MariaDB", host, port, start: "scripts/mariadb.sh start" })

/** Connection settings for `database` on the test server. */
export const config = (database: string, overrides: Partial<MysqlConfig> = {}): MysqlConfig => ({
  host,
  port,
  database,
  user,
  password,
  maxConnections: 10,
  connectTimeout: Duration.seconds(2),
  ...overrides
})

/** The settings of this suite's own, initially empty database. */
export class TestDatabase extends Context.Tag("@movieapp/testkit/MariaDb/TestDatabase")<TestDatabase, MysqlConfig>() {}

/** A fresh, empty database, dropped when the scope closes. */
export const makeTestDatabase: Effect.Effect<MysqlConfig, never, Scope.Scope> = Effect.gen(function*() {
  const admin = yield* MysqlClient.make({ host, port, username: user, password, maxConnections: 1 })
  const name = `movieapp_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  yield* admin`CREATE DATABASE ${admin(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`
  yield* Effect.addFinalizer(() => admin`DROP DATABASE IF EXISTS ${admin(name)}`.pipe(Effect.ignore))
  return config(name)
}).pipe(Effect.orDie, Effect.provide(Reactivity.layer))

export const layerTestDatabase: Layer.Layer<TestDatabase> = Layer.scoped(TestDatabase, makeTestDatabase)

/** A client of `database` on the test server, for checking what a service stored. */
export const client = (database: MysqlConfig) =>
  MysqlClient.make({
    host: database.host,
    port: database.port,
    database: database.database,
    username: database.user,
    password: database.password,
    maxConnections: 2
  }).pipe(Effect.orDie, Effect.provide(Reactivity.layer))
