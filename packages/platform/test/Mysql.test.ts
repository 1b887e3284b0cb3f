/**
 * The MySQL layer on a real MariaDB: the client behaves as @effect/sql-mysql2's;
 * requests for its pool's connections show at `/metrics` (scraped over HTTP, read
 * by the strict Prometheus parser) as they wait and are timed, and released
 * connections stay open for the next requests; and at start it
 * waits for a database that cannot be reached yet, but stops at once, saying what
 * to fix, on what waiting cannot mend.
 */
import { HttpServer } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import * as Poll from "@movieapp/testkit/Poll"
import * as PrometheusText from "@movieapp/testkit/PrometheusText"
import * as TcpProxy from "@movieapp/testkit/TcpProxy"
import {
  Cause,
  Context,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Queue,
  Redacted,
  Stream
} from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Http from "../src/Http.js"
import * as Metrics from "../src/Metrics.js"
import * as Mysql from "../src/Mysql.js"

/** A directory holding `files` (name to SQL) for the scope's lifetime. */
const migrationsDirectory = (files: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const directory = mkdtempSync(join(tmpdir(), "movieapp-migrations-"))
      for (const [name, text] of Object.entries(files)) writeFileSync(join(directory, name), text)
      return directory
    }),
    (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
  )

const TABLE = "test_migrations"
const createT = { "0001_create_t.sql": "CREATE TABLE t (id INT PRIMARY KEY, some_name VARCHAR(16));" }

/** Builds the layer in the scope; its SqlClient. */
const open = (database: Mysql.MysqlConfig, directory: string) =>
  Effect.map(Layer.build(Mysql.layer(database, { directory, table: TABLE })), Context.get(SqlClient.SqlClient))

/** How building the layer ended: the startup error's message, or "built". */
const startup = (database: Mysql.MysqlConfig, directory: string) =>
  Effect.scoped(Layer.build(Mysql.layer(database, { directory, table: TABLE }))).pipe(
    Effect.exit,
    Effect.map(Exit.match({
      onSuccess: () => "built",
      onFailure: (cause) =>
        Option.match(Cause.dieOption(cause), {
          onNone: () => assert.fail(`expected a defect, got ${Cause.pretty(cause)}`),
          onSome: (defect) => {
            assert.instanceOf(defect, Mysql.MysqlStartupError)
            return (defect as Mysql.MysqlStartupError).message
          }
        })
    }))
  )

/** The port of an HTTP server serving this process's metrics. */
const metricsPort = Effect.map(
  Layer.build(Http.serve(Metrics.route("mysql-test"), { host: "127.0.0.1", port: 0 })),
  (context) => Http.boundPort(Context.get(context, HttpServer.HttpServer))
)

const scrape = (port: number) =>
  Effect.promise(() => fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text())).pipe(
    Effect.flatMap((text) => Effect.try(() => PrometheusText.parse(text))),
    Effect.orDie
  )

const quiet = Logger.minimumLogLevel(LogLevel.Error)

describe("serverInfo", () => {
  it("knows INSERT .. RETURNING from MariaDB 10.5 on, and never on MySQL", () => {
    const returning = (version: string) => Mysql.serverInfo(version).returning
    assert.isTrue(returning("10.11.18-MariaDB"))
    assert.isTrue(returning("10.5.0-MariaDB-log"))
    assert.isTrue(returning("11.4.2-MariaDB-ubu2404"))
    assert.isTrue(returning("5.5.5-10.6.3-MariaDB"))
    assert.isFalse(returning("10.4.32-MariaDB"))
    assert.isFalse(returning("5.5.5-10.3.39-MariaDB"))
    assert.isFalse(returning("8.4.3"))
    assert.isFalse(returning("9.1.0-commercial"))
    assert.isFalse(returning(""))
  })
})

describe.runIf(await MariaDb.available())("MySQL layer on MariaDB", () => {
  it.live(
    "statements, transactions and streams work as with @effect/sql-mysql2's client",
    () =>
      Effect.gen(function*() {
        const database = yield* MariaDb.makeTestDatabase
        const sql = yield* open(database, yield* migrationsDirectory(createT))
        yield* sql`INSERT INTO t ${sql.insert([{ id: 1, someName: "one" }, { id: 2, someName: "two" }])}`
        assert.deepStrictEqual(yield* sql`SELECT id, some_name FROM t ORDER BY id`, [{ id: 1, someName: "one" }, {
          id: 2,
          someName: "two"
        }])
        const updated = (yield* sql`UPDATE t SET some_name = ${"uno"} WHERE id = ${1}`.raw) as {
          readonly affectedRows: number
        }
        assert.strictEqual(updated.affectedRows, 1)
        assert.deepStrictEqual(yield* sql`SELECT id, some_name FROM t ORDER BY id`.values, [[1, "uno"], [2, "two"]])
        const streamed = yield* Stream.runCollect(sql`SELECT id FROM t ORDER BY id`.stream)
        assert.deepStrictEqual([...streamed], [{ id: 1 }, { id: 2 }])
        const failed = yield* sql.withTransaction(
          sql`INSERT INTO t (id, some_name) VALUES (3, 'three')`.pipe(Effect.zipRight(Effect.fail("abort")))
        ).pipe(Effect.flip)
        assert.strictEqual(failed, "abort")
        assert.deepStrictEqual(yield* sql`SELECT COUNT(*) AS n FROM t`, [{ n: 2 }])
      }).pipe(Effect.scoped, Effect.provide(quiet)),
    60_000
  )

  it.live(
    "withIsolation runs that one transaction at the level asked; other transactions keep the server's default",
    () =>
      Effect.gen(function*() {
        const database = { ...(yield* MariaDb.makeTestDatabase), maxConnections: 2 }
        const sql = yield* open(database, yield* migrationsDirectory(createT))
        yield* sql`INSERT INTO t (id, some_name) VALUES (1, 'before')`
        const read = sql<{ someName: string }>`SELECT some_name FROM t WHERE id = 1`.pipe(
          Effect.map(([row]) => row!.someName)
        )
        let round = 0
        // Reads the row twice within the transaction, with another connection committing a change in between.
        const readTwice = Effect.gen(function*() {
          const first = yield* read
          const committed = `after-${++round}`
          yield* sql`UPDATE t SET some_name = ${committed} WHERE id = 1`.pipe(
            Effect.mapInputContext((context: Context.Context<never>) =>
              Context.omit(SqlClient.TransactionConnection)(context) as Context.Context<never>
            )
          )
          return [first, yield* read, committed] as const
        })
        // READ COMMITTED: the second read sees the other connection's commit.
        const [rcFirst, rcSecond, rcCommitted] = yield* Mysql.withIsolation(sql, "READ COMMITTED")(readTwice)
        assert.deepStrictEqual([rcFirst, rcSecond], ["before", rcCommitted])
        // The server's default (REPEATABLE READ), on the same pool afterwards: it does not.
        const [rrFirst, rrSecond] = yield* sql.withTransaction(readTwice)
        assert.deepStrictEqual([rrFirst, rrSecond], [rcCommitted, rcCommitted])
        // It is a transaction: a failure rolls its statements back.
        yield* Mysql.withIsolation(sql, "READ COMMITTED")(
          sql`INSERT INTO t (id, some_name) VALUES (2, 'two')`.pipe(Effect.zipRight(Effect.fail("abort")))
        ).pipe(Effect.flip)
        assert.deepStrictEqual(yield* sql`SELECT COUNT(*) AS n FROM t`, [{ n: 1 }])
      }).pipe(Effect.scoped, Effect.provide(quiet)),
    60_000
  )

  it.live(
    "requests for the pool's connections at /metrics: none waiting while one is free, those beyond the maximum waiting; each timed; released connections stay open",
    () =>
      Effect.gen(function*() {
        const database = { ...(yield* MariaDb.makeTestDatabase), maxConnections: 3 }
        const sql = yield* open(database, yield* migrationsDirectory(createT))
        const port = yield* metricsPort
        const pool = { pool_name: `${database.host}:${database.port}/${database.database}` }
        const read = (
          families: ReadonlyMap<string, PrometheusText.Family>,
          name: string,
          labels: Record<string, string> = {}
        ) => PrometheusText.value(families, name, { ...pool, ...labels })

        const before = yield* scrape(port)
        assert.strictEqual(before.get("db_client_connection_pending_requests")?.type, "gauge")
        assert.strictEqual(before.get("db_client_connection_wait_time_seconds")?.type, "histogram")
        assert.strictEqual(read(before, "db_client_connection_max"), 3)
        assert.strictEqual(read(before, "db_client_connection_pending_requests"), 0)

        // Each transaction holds its connection from its first statement until `release`.
        const release = yield* Deferred.make<void>()
        const holding = yield* Queue.unbounded<number>()
        const hold = (n: number) =>
          sql.withTransaction(
            sql`SELECT ${n}`.pipe(Effect.zipRight(Queue.offer(holding, n)), Effect.zipRight(Deferred.await(release)))
          )

        const two = yield* Effect.fork(Effect.forEach([1, 2], hold, { concurrency: "unbounded", discard: true }))
        yield* Queue.takeN(holding, 2)
        const held = yield* scrape(port)
        assert.strictEqual(read(held, "db_client_connection_pending_requests"), 0)

        // Three more: one gets the last connection, two have to wait.
        const three = yield* Effect.fork(Effect.forEach([3, 4, 5], hold, { concurrency: "unbounded", discard: true }))
        yield* Queue.take(holding)
        yield* Poll.until(scrape(port), (families) => read(families, "db_client_connection_pending_requests") === 2, {
          what: "two requests waiting for a connection",
          timeout: "10 seconds"
        })

        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(Fiber.zip(two, three))
        const after = yield* scrape(port)
        assert.strictEqual(read(after, "db_client_connection_pending_requests"), 0)
        const waited = (name: string) => read(after, name)! - (read(before, name) ?? 0)
        // One request per transaction, the two that waited included; nothing else asked for a connection.
        assert.strictEqual(waited("db_client_connection_wait_time_seconds_count"), 5)
        assert.strictEqual(
          read(after, "db_client_connection_wait_time_seconds_bucket", { le: "+Inf" }),
          read(after, "db_client_connection_wait_time_seconds_count")
        )
        assert.isAbove(waited("db_client_connection_wait_time_seconds_sum"), 0)
        // Released connections stay open for the next requests: the server still has all three (this
        // statement runs on one of them; were they closed, it would open a new one and count it alone).
        assert.deepStrictEqual(
          yield* sql`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE()`,
          [{ n: 3 }]
        )
      }).pipe(Effect.scoped, Effect.provide(quiet)),
    60_000
  )

  it.live("a closed pool reports nothing waiting and no connections to open", () =>
    Effect.gen(function*() {
      const database = yield* MariaDb.makeTestDatabase
      const directory = yield* migrationsDirectory(createT)
      const port = yield* metricsPort
      const pool = { pool_name: `${database.host}:${database.port}/${database.database}` }
      const whileOpen = yield* Effect.scoped(Effect.flatMap(open(database, directory), () => scrape(port)))
      assert.strictEqual(PrometheusText.value(whileOpen, "db_client_connection_max", pool), 10)
      assert.strictEqual(PrometheusText.value(whileOpen, "db_client_connection_pending_requests", pool), 0)
      const closed = yield* scrape(port)
      assert.strictEqual(PrometheusText.value(closed, "db_client_connection_max", pool), 0)
      assert.strictEqual(PrometheusText.value(closed, "db_client_connection_pending_requests", pool), 0)
    }).pipe(Effect.scoped, Effect.provide(quiet)), 60_000)

  describe("at start", () => {
    it.live("wrong password: stops at once, naming the credentials", () =>
      Effect.gen(function*() {
        const database = yield* MariaDb.makeTestDatabase
        const message = yield* startup(
          { ...database, password: Redacted.make("not-the-password") },
          yield* migrationsDirectory(createT)
        )
        assert.include(message, `MySQL ${database.host}:${database.port} database "${database.database}"`)
        assert.include(message, "the server refused the credentials (ER_ACCESS_DENIED_ERROR: Access denied for user")
        assert.include(message, "check MYSQL_USER and MYSQL_PASSWORD")
        assert.notInclude(message, "\n")
      }).pipe(Effect.scoped, Effect.provide(quiet)), 60_000)

    it.live("unknown database: stops at once, saying it does not exist", () =>
      Effect.gen(function*() {
        const database = yield* MariaDb.makeTestDatabase
        const missing = `${database.database}_missing`
        const message = yield* startup({ ...database, database: missing }, yield* migrationsDirectory(createT))
        assert.include(message, `database "${missing}" does not exist (ER_BAD_DB_ERROR: Unknown database '${missing}')`)
      }).pipe(Effect.scoped, Effect.provide(quiet)), 60_000)

    it.live("unreadable migrations: stops at once, naming the directory", () =>
      Effect.gen(function*() {
        const database = yield* MariaDb.makeTestDatabase
        const missing = join(tmpdir(), "movieapp-no-such-migrations")
        const message = yield* startup(database, missing)
        assert.include(message, `cannot read the migrations in ${missing}`)
      }).pipe(Effect.scoped, Effect.provide(quiet)), 60_000)

    it.live(
      "a migration that fails stops the start, naming its file, and is not recorded as applied",
      () =>
        Effect.gen(function*() {
          const database = yield* MariaDb.makeTestDatabase
          const directory = yield* migrationsDirectory({
            ...createT,
            // MySQL commits the first CREATE TABLE (and the migrator's record) before the second fails.
            "0002_add_u_v.sql": "CREATE TABLE u (id INT PRIMARY KEY);\nCREAT TABLE v (id INT PRIMARY KEY);"
          })
          const message = yield* startup(database, directory)
          assert.include(
            message,
            `migration ${directory}/0002_add_u_v.sql failed (ER_PARSE_ERROR: You have an error in your SQL syntax`
          )
          assert.notInclude(message, "\n")

          const check = yield* MariaDb.client(database)
          assert.deepStrictEqual(yield* check`SELECT migration_id AS id FROM ${check(TABLE)} ORDER BY migration_id`, [{
            id: 1
          }])
          // Fixed, it runs at the next start.
          writeFileSync(
            join(directory, "0002_add_u_v.sql"),
            "CREATE TABLE IF NOT EXISTS u (id INT PRIMARY KEY);\nCREATE TABLE v (id INT PRIMARY KEY);"
          )
          assert.strictEqual(yield* startup(database, directory), "built")
          assert.deepStrictEqual(yield* check`SELECT migration_id AS id FROM ${check(TABLE)} ORDER BY migration_id`, [{
            id: 1
          }, { id: 2 }])
          assert.deepStrictEqual(yield* check`SELECT COUNT(*) AS n FROM v`, [{ n: 0 }])
        }).pipe(Effect.scoped, Effect.provide(quiet)),
      60_000
    )

    it.live(
      "database unreachable at first: waits, retrying, and comes up once it can be reached",
      () =>
        Effect.gen(function*() {
          const database = yield* MariaDb.makeTestDatabase
          const proxy = yield* TcpProxy.make({ host: database.host, port: database.port })
          yield* proxy.cut
          const starting = yield* Effect.fork(
            open({ ...database, host: "127.0.0.1", port: proxy.port }, yield* migrationsDirectory(createT))
          )
          yield* Poll.until(proxy.connections, (tries) => tries >= 3, {
            what: "three connection attempts",
            timeout: "30 seconds"
          })
          assert.isNull(starting.unsafePoll(), "still starting while the database cannot be reached")
          yield* proxy.restore
          const sql = yield* Fiber.join(starting)
          assert.deepStrictEqual(yield* sql`SELECT COUNT(*) AS n FROM t`, [{ n: 0 }])
        }).pipe(Effect.scoped, Effect.provide(quiet)),
      60_000
    )
  })
})
