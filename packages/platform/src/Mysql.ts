/**
 * MySQL (and MariaDB) for the services that store data there. A service gets its
 * database in its composition root, from its settings and its migrations:
 *
 * ```ts
 * RatingRepositoryMysql.layer.pipe(Layer.provide(Mysql.layer(yield* Mysql.config, RatingRepositoryMysql.migrations)))
 * ```
 *
 * and its repository adapter takes the client (`SqlClient`, `MysqlClient`) and
 * what the server can do (`MysqlServer`), and maps database failures with
 * {@link orUnavailable}: callers see ServiceUnavailable, never driver text.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { NodeContext } from "@effect/platform-node"
import { SqlClient, SqlError } from "@effect/sql"
import { MysqlClient, MysqlMigrator } from "@effect/sql-mysql2"
import { ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Cause, Config, Context, Duration, Effect, Layer, Option, type Redacted, Schedule, Scope, String } from "effect"
import { sqlFileLoader } from "./internal/MysqlMigrations.js"
import * as PoolMetrics from "./internal/MysqlPoolMetrics.js"
import {
  driverErrorIn,
  MysqlStartupError,
  NoAnswer,
  type StartupProblem,
  startupProblem
} from "./internal/MysqlStartup.js"
import { Readiness } from "./Readiness.js"

export { sqlFileLoader } from "./internal/MysqlMigrations.js"
export { MysqlStartupError } from "./internal/MysqlStartup.js"

/**
 * A pool to the configured database with `migrations` applied, reporting how its
 * connections are asked for at `/metrics` (`db_client_connection_*`).
 *
 * Building waits, retrying with backoff, while the database cannot be reached
 * (refused or reset connections, timeouts, a name that does not resolve yet, a
 * server starting or stopping), so a service started before its database comes
 * up by itself. Anything else stops the service at once, the layer dying with a
 * {@link MysqlStartupError} that says what to fix: refused credentials (a Secret
 * changed in Kubernetes reaches a pod only when it restarts, which stopping
 * brings about), a database that does not exist, a migration that fails (named),
 * unreadable migrations.
 *
 * Where a {@link Readiness} registry is provided (a server), the database becomes
 * its `mysql` check: while it cannot be reached the service reports NOT_SERVING.
 */
export const layer = (
  options: MysqlConfig,
  migrations: { readonly directory: string; readonly table: string }
): Layer.Layer<SqlClient.SqlClient | MysqlClient.MysqlClient | MysqlServer> => {
  const migrated = MysqlMigrator.layer({
    loader: sqlFileLoader(migrations.directory, migrations.table),
    table: migrations.table
  }).pipe(
    Layer.provideMerge(client(options)),
    Layer.provide(NodeContext.layer)
  )
  const readinessCheck = Layer.scopedDiscard(Effect.gen(function*() {
    const readiness = yield* Effect.serviceOption(Readiness)
    if (Option.isNone(readiness)) return
    const sql = yield* MysqlClient.MysqlClient
    yield* readiness.value.register("mysql", sql`SELECT 1`)
  }))
  const whileTransient = Schedule.exponential("200 millis").pipe(
    Schedule.union(Schedule.spaced("5 seconds")),
    Schedule.jittered,
    Schedule.whileInput((problem: StartupProblem) => problem.transient)
  )
  return migrated.pipe(
    // A failed migration arrives as a defect (the migrator's choice): judged like any failure.
    Layer.catchAllCause((cause) =>
      // Only interruptions: no error values, so nothing of the error type.
      Cause.isInterruptedOnly(cause)
        ? Layer.failCause(cause as Cause.Cause<never>)
        : Layer.fail(startupProblem(cause, options, migrations))
    ),
    Layer.tapError((problem) =>
      problem.transient
        ? Effect.logWarning("database cannot be reached yet; retrying").pipe(
          Effect.annotateLogs({
            "db.host": `${options.host}:${options.port}`,
            "db.name": options.database,
            reason: problem.message
          })
        )
        : Effect.void
    ),
    Layer.retry(whileTransient),
    Layer.catchAll((problem) => Layer.die(new MysqlStartupError({ message: problem.message }))),
    (database) => Layer.provideMerge(readinessCheck, database)
  )
}

export interface MysqlConfig {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  readonly password: Redacted.Redacted
  readonly maxConnections: number
  readonly connectTimeout: Duration.Duration
}

/** `mysql.*` (`MYSQL_HOST`, `MYSQL_PORT`, `MYSQL_DATABASE`, `MYSQL_USER`, `MYSQL_PASSWORD`, ...). */
export const config: Config.Config<MysqlConfig> = Config.all({
  host: Config.string("host").pipe(Config.withDefault("127.0.0.1")),
  port: Config.port("port").pipe(Config.withDefault(3306)),
  database: Config.string("database").pipe(Config.withDefault("movieapp")),
  user: Config.string("user"),
  password: Config.redacted("password"),
  maxConnections: Config.integer("maxConnections").pipe(Config.withDefault(10)),
  connectTimeout: Config.duration("connectTimeout").pipe(Config.withDefault(Duration.seconds(5)))
}).pipe(Config.nested("mysql"))

/**
 * The single mapping of database failures at a storage port: logged with their
 * cause for operators, reported to callers as `<service> unavailable`.
 */
export const orUnavailable = (service: string) => <A, E, R>(self: Effect.Effect<A, E | SqlError.SqlError, R>) =>
  Effect.catchIf(
    self,
    (error): error is SqlError.SqlError => error instanceof SqlError.SqlError,
    (error) =>
      Effect.logWarning("database call failed", globalThis.String(error.cause ?? error.message)).pipe(
        Effect.zipRight(Effect.fail(new ServiceUnavailable({ service, reason: "the database cannot be reached" })))
      )
  ) as Effect.Effect<A, Exclude<E, SqlError.SqlError> | ServiceUnavailable, R>

/** Isolation levels a transaction can ask for. */
export type IsolationLevel = "READ UNCOMMITTED" | "READ COMMITTED" | "REPEATABLE READ" | "SERIALIZABLE"

/**
 * Like `sql.withTransaction`, at `level` rather than the server's default
 * (REPEATABLE READ, unless an operator changed it). The level is set for that one
 * transaction, so the pooled connection keeps its session default. A transaction
 * nested in another runs as a savepoint of it, at the outer one's level.
 */
export const withIsolation = (sql: SqlClient.SqlClient, level: IsolationLevel) =>
  SqlClient.makeWithTransaction({
    transactionTag: SqlClient.TransactionConnection,
    spanAttributes: [["db.system.name", "mysql"], ["db.transaction.isolation", level]],
    acquireConnection: Effect.flatMap(Scope.make(), (scope) =>
      Effect.map(Scope.extend(sql.reserve, scope), (conn) => [scope, conn] as const)),
    begin: (conn) =>
      conn.executeUnprepared(`SET TRANSACTION ISOLATION LEVEL ${level}`, [], undefined).pipe(
        Effect.zipRight(conn.executeUnprepared("BEGIN", [], undefined))
      ),
    savepoint: (conn, id) =>
      conn.executeUnprepared(`SAVEPOINT effect_sql_${id}`, [], undefined),
    commit: (conn) => conn.executeUnprepared("COMMIT", [], undefined),
    rollback: (conn) => conn.executeUnprepared("ROLLBACK", [], undefined),
    rollbackSavepoint: (conn, id) => conn.executeUnprepared(`ROLLBACK TO SAVEPOINT effect_sql_${id}`, [], undefined)
  })

/** The server behind a pool, as it introduced itself, and what it can do beyond what MySQL and MariaDB share. */
export interface MysqlServerInfo {
  /** `SELECT VERSION()`, e.g. `10.11.18-MariaDB` or `8.4.3`. */
  readonly version: string
  /** `INSERT .. RETURNING` and `DELETE .. RETURNING`: MariaDB 10.5 and later; MySQL has neither. */
  readonly returning: boolean
}

export class MysqlServer extends Context.Tag("@movieapp/platform/Mysql/MysqlServer")<MysqlServer, MysqlServerInfo>() {}

/** What a server of `version` (its `SELECT VERSION()`) can do. */
export const serverInfo = (version: string): MysqlServerInfo => {
  // MariaDB 10 introduced itself to old clients as `5.5.5-10...`.
  const [, major = 0, minor = 0] = /^(?:5\.5\.5-)?(\d+)\.(\d+)/.exec(version)?.map(Number) ?? []
  const mariaDb = /mariadb/i.test(version)
  return { version, returning: mariaDb && (major > 10 || (major === 10 && minor >= 5)) }
}

/**
 * @effect/sql-mysql2's client, its pool opening connections on demand up to
 * `maxConnections` and keeping them open while idle (mysql2's default): the
 * library closes every idle connection within a second unless `maxIdle` is
 * given, so a service with pauses in its traffic paid a new connection and login
 * for most requests.
 */
const client = (options: MysqlConfig) =>
  Layer.scopedContext(Effect.gen(function*() {
    const sql = yield* MysqlClient.make({
      host: options.host,
      port: options.port,
      database: options.database,
      username: options.user,
      password: options.password,
      maxConnections: options.maxConnections,
      poolConfig: { maxIdle: options.maxConnections, connectTimeout: Duration.toMillis(options.connectTimeout) },
      transformQueryNames: String.camelToSnake,
      transformResultNames: String.snakeToCamel
    }).pipe(
      // The library's own connection check gives up after a while, saying only that.
      Effect.mapError((error) => driverErrorIn(error) === undefined ? new NoAnswer({ cause: error }) : error)
    )
    const [row] = yield* sql<{ readonly version: unknown }>`SELECT VERSION() AS version`
    yield* PoolMetrics.report(PoolMetrics.poolName(options), options.maxConnections)
    return Context.make(MysqlClient.MysqlClient, sql).pipe(
      Context.add(SqlClient.SqlClient, sql),
      Context.add(MysqlServer, serverInfo(globalThis.String(row?.version ?? "")))
    )
  })).pipe(Layer.provide(Reactivity.layer))
