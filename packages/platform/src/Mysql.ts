/**
 * MySQL (and MariaDB) for the services that store data there: configuration, a
 * migrated client, and the one rule for database failures: they reach callers as
 * ServiceUnavailable, never as driver text.
 */
import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { SqlClient, SqlError } from "@effect/sql"
import { MigrationError, type Loader } from "@effect/sql/Migrator"
import { MysqlClient, MysqlMigrator } from "@effect/sql-mysql2"
import { ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Config, Duration, Effect, Layer, Option, type Redacted, Schedule, Scope, String } from "effect"
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
 * Migrations as plain SQL files named `<id>_<name>.sql`, applied in id order, each
 * once (recorded in the migrator's table). A file may hold several statements, so
 * it is sent unprepared.
 */
export const sqlFileLoader = (directory: string): Loader<FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const files = yield* fs.readDirectory(directory)
    return yield* Effect.forEach(
      files.flatMap((file) => {
        const match = file.match(/^(\d+)_(.+)\.sql$/)
        return match ? [{ file, id: Number(match[1]), name: match[2]! }] : []
      }),
      ({ file, id, name }) =>
        Effect.map(fs.readFileString(`${directory}/${file}`), (text) =>
          [id, name, Effect.succeed(Effect.flatMap(MysqlClient.MysqlClient, (sql) => sql.unsafe(text).unprepared))] as const)
    )
  }).pipe(
    Effect.mapError((cause) => new MigrationError({ reason: "failed", message: `cannot read migrations in ${directory}: ${cause}` }))
  )

/**
 * A pool to the configured database with `migrations` applied. Building waits,
 * retrying with backoff, until the database can be reached, so a service started
 * before its database comes up by itself. Where a {@link Readiness} registry is
 * provided (a server), the database becomes its `mysql` check: while it cannot be
 * reached the service reports NOT_SERVING.
 */
export const layer = (
  options: MysqlConfig,
  migrations: { readonly directory: string; readonly table: string }
): Layer.Layer<SqlClient.SqlClient | MysqlClient.MysqlClient> => {
  const client = MysqlClient.layer({
    host: options.host,
    port: options.port,
    database: options.database,
    username: options.user,
    password: options.password,
    maxConnections: options.maxConnections,
    poolConfig: { connectTimeout: Duration.toMillis(options.connectTimeout) },
    transformQueryNames: String.camelToSnake,
    transformResultNames: String.snakeToCamel
  })
  const migrated = MysqlMigrator.layer({ loader: sqlFileLoader(migrations.directory), table: migrations.table }).pipe(
    Layer.provideMerge(client),
    Layer.provide(NodeContext.layer)
  )
  const readinessCheck = Layer.scopedDiscard(Effect.gen(function* () {
    const readiness = yield* Effect.serviceOption(Readiness)
    if (Option.isNone(readiness)) return
    const sql = yield* MysqlClient.MysqlClient
    yield* readiness.value.register("mysql", sql`SELECT 1`)
  }))
  return migrated.pipe(
    Layer.tapErrorCause((cause) =>
      Effect.logWarning("database not ready; retrying").pipe(
        Effect.annotateLogs({ "db.host": `${options.host}:${options.port}`, "db.name": options.database, cause: String.takeLeft(globalThis.String(cause), 500) })
      )),
    Layer.retry(Schedule.exponential("200 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")), Schedule.jittered)),
    Layer.orDie,
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
