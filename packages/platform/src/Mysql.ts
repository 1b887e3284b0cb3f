/**
 * MySQL (and MariaDB) for the services that store data there: configuration, a
 * migrated client whose pool reports its connections as metrics, and the one
 * rule for database failures: they reach callers as ServiceUnavailable, never as
 * driver text.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { SqlClient, SqlError } from "@effect/sql"
import { MigrationError, type Loader } from "@effect/sql/Migrator"
import { MysqlClient, MysqlMigrator } from "@effect/sql-mysql2"
import { ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Cause, Config, Context, Data, Duration, Effect, Layer, Metric, MetricLabel, Option, type Redacted, Schedule, Scope, String } from "effect"
import { tracingChannel } from "node:diagnostics_channel"
import * as MysqlPool from "./internal/MysqlPool.js"
import * as Metrics from "./Metrics.js"
import { Readiness } from "./Readiness.js"

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
 * The database cannot be used and waiting will not change that (refused
 * credentials, a missing database, a migration that fails): the message says
 * what to fix, in one line, and the service stops.
 */
export class MysqlStartupError extends Data.TaggedError("MysqlStartupError")<{ readonly message: string }> {
  constructor(props: { readonly message: string }) {
    super(props)
    // An operator's problem, not a bug: a stack trace would only bury the message.
    this.stack = `${this.name}: ${this.message}`
  }
}

/** A migration file whose SQL failed, kept in the cause so the startup error can name the file. */
class MigrationFileFailed extends Data.TaggedError("MigrationFileFailed")<{ readonly file: string; readonly cause: unknown }> {}

/**
 * Migrations as plain SQL files named `<id>_<name>.sql`, applied in id order, each
 * once (recorded in `table`, the migrator's table). A file may hold several
 * statements, so it is sent unprepared.
 *
 * MySQL commits DDL on the spot, and with it the migrator's record of the
 * migration, written before the migration runs: a file that fails after its first
 * statement would count as applied at the next start. So a failing migration
 * removes its record (and those of the ones after it, not run either) before the
 * migrator rolls back; its statements that did run stay, and running it again
 * says what is in the way.
 */
export const sqlFileLoader = (directory: string, table: string): Loader<FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const files = yield* fs.readDirectory(directory)
    return yield* Effect.forEach(
      files.flatMap((file) => {
        const match = file.match(/^(\d+)_(.+)\.sql$/)
        return match ? [{ file: `${directory}/${file}`, id: Number(match[1]), name: match[2]! }] : []
      }),
      ({ file, id, name }) =>
        Effect.map(fs.readFileString(file), (text) => {
          const migration = Effect.flatMap(MysqlClient.MysqlClient, (sql) =>
            sql.unsafe(text).unprepared.pipe(
              Effect.tapError(() => sql`DELETE FROM ${sql(table)} WHERE migration_id >= ${id}`.pipe(Effect.ignore)),
              Effect.mapError((cause) => new MigrationFileFailed({ file, cause }))
            ))
          return [id, name, Effect.succeed(migration)] as const
        })
    )
  }).pipe(
    Effect.mapError((cause) => new MigrationError({ reason: "failed", message: `cannot read the migrations in ${directory}: ${cause.message}` }))
  )

// ---------------------------------------------------------------------------------
// Pool metrics: OpenTelemetry's database client connection metrics
// (db.client.connection.*), with the pool's name as `pool_name`.

const connectionCount = Metric.gauge("db_client_connection_count", {
  description: "Connections of the pool by state: used (lent out, or being opened for a request) or idle (open, waiting to be lent)"
})
const connectionMax = Metric.gauge("db_client_connection_max", {
  description: "The most connections the pool opens (MYSQL_MAX_CONNECTIONS)"
})
const pendingRequests = Metric.gauge("db_client_connection_pending_requests", {
  description: "Requests waiting for a connection because the pool's connections are all in use"
})
const waitTime = Metric.histogram(
  "db_client_connection_wait_time_seconds",
  Metrics.latencyBoundaries,
  "Time a request waited to obtain a connection from the pool"
)

/**
 * `host:port/database`, as OpenTelemetry suggests. Pools of one process with the
 * same name (services sharing a process and a database) are reported together.
 */
const poolName = (target: { readonly host: string; readonly port: number | undefined; readonly database: string }) =>
  `${target.host}:${target.port}/${target.database}`

const livePools = new Map<string, Set<MysqlPool.Pool>>()

const labelCache = new Map<string, ReturnType<typeof makeLabels>>()
const makeLabels = (name: string) => {
  const pool = [MetricLabel.make("pool_name", name)]
  return { pool, used: [...pool, MetricLabel.make("state", "used")], idle: [...pool, MetricLabel.make("state", "idle")] }
}
const labelsOf = (name: string) => {
  let labels = labelCache.get(name)
  if (labels === undefined) {
    labels = makeLabels(name)
    labelCache.set(name, labels)
  }
  return labels
}

/** Sets the gauges of `name` from its live pools' state (zeros once none is left). */
const recordPools = (name: string) => {
  const total = { used: 0, idle: 0, pending: 0, max: 0 }
  for (const pool of livePools.get(name) ?? []) {
    const state = pool.state()
    total.used += state.used
    total.idle += state.idle
    total.pending += state.pending
    total.max += state.max
  }
  const labels = labelsOf(name)
  connectionCount.unsafeUpdate(total.used, labels.used)
  connectionCount.unsafeUpdate(total.idle, labels.idle)
  pendingRequests.unsafeUpdate(total.pending, labels.pool)
  connectionMax.unsafeUpdate(total.max, labels.pool)
}

/**
 * Every request for a pool connection, timed through mysql2's own tracing channel
 * (its instrumentation point for this; it covers statements that borrow a
 * connection inside mysql2 as well as transactions). Subscribed once per process,
 * when the first pool opens; a request to a database no live pool is named after
 * is not recorded.
 */
interface ConnectionRequest {
  readonly database: string
  readonly serverAddress: string
  readonly serverPort: number | undefined
}
let timingConnectionRequests = false
const timeConnectionRequests = () => {
  if (timingConnectionRequests) return
  timingConnectionRequests = true
  const requestedAt = new WeakMap<object, number>()
  const ignore = () => {}
  tracingChannel<unknown, ConnectionRequest>("mysql2:pool:connect").subscribe({
    start: (request) => void requestedAt.set(request, performance.now()),
    asyncStart: (request) => {
      const at = requestedAt.get(request)
      const name = poolName({ host: request.serverAddress, port: request.serverPort, database: request.database })
      if (request.error === undefined && at !== undefined && livePools.has(name)) {
        waitTime.unsafeUpdate((performance.now() - at) / 1000, labelsOf(name).pool)
      }
    },
    end: ignore,
    asyncEnd: ignore,
    error: ignore
  })
}

/** Reports `pool` under `name` for as long as the scope is open. */
const reportPool = (name: string, pool: MysqlPool.Pool): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    timeConnectionRequests()
    yield* Effect.acquireRelease(
      Effect.sync(() => void livePools.set(name, (livePools.get(name) ?? new Set()).add(pool))),
      () =>
        Effect.sync(() => {
          const pools = livePools.get(name)
          pools?.delete(pool)
          if (pools?.size === 0) livePools.delete(name)
          recordPools(name)
        })
    )
    yield* Metrics.observeAtScrape(Effect.sync(() => recordPools(name)))
  })

// ---------------------------------------------------------------------------------
// Startup: what is worth waiting for

/** Node's socket errors and mysql2's carry a code (`ECONNREFUSED`, `ER_ACCESS_DENIED_ERROR`); the server's an errno. */
interface DriverError {
  readonly code: string
  readonly errno?: number
  readonly message: string
}

/** Down, starting, restarting or overloaded servers, and networks: these pass by themselves. */
const transientCodes = new Set([
  "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN",
  // A name that does not resolve yet: Compose's and Kubernetes' DNS know a server only once it runs.
  "EAI_AGAIN", "ENOTFOUND",
  "PROTOCOL_CONNECTION_LOST", "PROTOCOL_SEQUENCE_TIMEOUT"
])
const transientErrnos = new Set([
  1040, // too many connections
  1053, // server shutdown in progress
  1205, // lock wait timeout (another instance migrating)
  1213, // deadlock
  1927 // MariaDB: connection killed (the server stopping)
])

const causes = function* (error: unknown) {
  let current = error
  for (let depth = 0; depth < 8 && typeof current === "object" && current !== null; depth++) {
    yield current
    current = (current as { readonly cause?: unknown }).cause
  }
}

const driverErrorIn = (error: unknown): DriverError | undefined => {
  for (const candidate of causes(error)) {
    const { code, message } = candidate as Partial<DriverError>
    if (typeof code === "string" && typeof message === "string") return candidate as DriverError
  }
  return undefined
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, " ").trim()

interface StartupProblem {
  readonly transient: boolean
  readonly message: string
}

/** Whether waiting may help, and what the operator should read. */
const startupProblem = (cause: Cause.Cause<unknown>, options: MysqlConfig, migrations: { readonly directory: string }): StartupProblem => {
  const error = Cause.squash(cause)
  const where = `MySQL ${options.host}:${options.port} database "${options.database}"`
  const driver = driverErrorIn(error)
  // Node's messages name their code ("connect ECONNREFUSED 127.0.0.1:3306"), the server's do not.
  const detail = oneLine(
    driver
      ? driver.message.includes(driver.code) ? driver.message : `${driver.code}: ${driver.message}`
      : error instanceof Error ? error.message : globalThis.String(error)
  )
  if (driver && (transientCodes.has(driver.code) || (driver.errno !== undefined && transientErrnos.has(driver.errno)))) {
    return { transient: true, message: `${where} cannot be reached: ${detail}` }
  }
  const fatal = (message: string): StartupProblem => ({ transient: false, message: oneLine(message) })
  const migration = [...causes(error)].find((e): e is MigrationFileFailed => e instanceof MigrationFileFailed)
  if (migration) return fatal(`${where}: migration ${migration.file} failed (${detail})`)
  if (error instanceof MigrationError) return fatal(`${where}: migrations in ${migrations.directory}: ${detail}`)
  switch (driver?.errno) {
    case 1045:
    case 1698: // access denied, no password given
      return fatal(`${where}: the server refused the credentials (${detail}); check MYSQL_USER and MYSQL_PASSWORD`)
    case 1049:
      return fatal(`${where} does not exist (${detail}); create it, or set MYSQL_DATABASE`)
    case 1044:
      return fatal(`${where}: user "${options.user}" may not use it (${detail})`)
  }
  return fatal(`${where}: ${detail}`)
}

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
 * A pool to the configured database with `migrations` applied, reporting its
 * connections at `/metrics` (`db_client_connection_*`).
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
  const client = Layer.scopedContext(Effect.gen(function* () {
    const pool = yield* MysqlPool.make({
      host: options.host,
      port: options.port,
      database: options.database,
      user: options.user,
      password: options.password,
      maxConnections: options.maxConnections,
      connectTimeout: options.connectTimeout,
      transformQueryNames: String.camelToSnake,
      transformResultNames: String.snakeToCamel
    })
    yield* reportPool(poolName(options), pool)
    return Context.make(MysqlClient.MysqlClient, pool.client).pipe(
      Context.add(SqlClient.SqlClient, pool.client),
      Context.add(MysqlServer, serverInfo(pool.serverVersion))
    )
  })).pipe(Layer.provide(Reactivity.layer))
  const migrated = MysqlMigrator.layer({ loader: sqlFileLoader(migrations.directory, migrations.table), table: migrations.table }).pipe(
    Layer.provideMerge(client),
    Layer.provide(NodeContext.layer)
  )
  const readinessCheck = Layer.scopedDiscard(Effect.gen(function* () {
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
      Cause.isInterruptedOnly(cause) ? Layer.failCause(cause as Cause.Cause<never>) : Layer.fail(startupProblem(cause, options, migrations))),
    Layer.tapError((problem) =>
      problem.transient
        ? Effect.logWarning("database cannot be reached yet; retrying").pipe(
          Effect.annotateLogs({ "db.host": `${options.host}:${options.port}`, "db.name": options.database, reason: problem.message })
        )
        : Effect.void),
    Layer.retry(whileTransient),
    Layer.catchAll((problem) => Layer.die(new MysqlStartupError({ message: problem.message }))),
    (database) => Layer.provideMerge(readinessCheck, database)
  )
}

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
    savepoint: (conn, id) => conn.executeUnprepared(`SAVEPOINT effect_sql_${id}`, [], undefined),
    commit: (conn) => conn.executeUnprepared("COMMIT", [], undefined),
    rollback: (conn) => conn.executeUnprepared("ROLLBACK", [], undefined),
    rollbackSavepoint: (conn, id) => conn.executeUnprepared(`ROLLBACK TO SAVEPOINT effect_sql_${id}`, [], undefined)
  })
