/**
 * An @effect/sql client over a mysql2 pool made here. @effect/sql-mysql2 makes
 * its pool inside `MysqlClient.make` and keeps it private; owning the pool is what
 * lets a service report how its connections are used. Statements, transactions,
 * streams and errors behave exactly as in @effect/sql-mysql2 0.53.0's
 * `MysqlClient.make`, which this follows line for line: compare it when upgrading.
 * The one deliberate difference is the pool's idle policy (see `make`).
 */
import type * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient, SqlError, Statement } from "@effect/sql"
import type { Connection } from "@effect/sql/SqlConnection"
import { asyncPauseResume } from "@effect/sql/SqlStream"
import { MysqlClient } from "@effect/sql-mysql2"
import { Chunk, Duration, Effect, Redacted, type Scope, Stream } from "effect"
import * as Mysql from "mysql2"
import type { MysqlConfig } from "../Mysql.js"

export interface Options extends MysqlConfig {
  readonly transformQueryNames?: ((name: string) => string) | undefined
  readonly transformResultNames?: ((name: string) => string) | undefined
}

/** What the pool's connections are doing right now. */
export interface PoolState {
  /** Lent out (running a statement or holding a transaction), or being opened for a request. */
  readonly used: number
  /** Open and waiting to be lent. */
  readonly idle: number
  /** Requests waiting because `max` connections are in use. */
  readonly pending: number
  readonly max: number
}

export interface Pool {
  readonly client: MysqlClient.MysqlClient
  /** What the server answers to `SELECT VERSION()`, e.g. `10.11.18-MariaDB` or `8.4.3`. */
  readonly serverVersion: string
  /** Read from the pool's own bookkeeping, so it is the pool's truth at this instant. */
  readonly state: () => PoolState
}

/**
 * mysql2 keeps its pool's state in fields its typings do not declare. The version
 * is pinned, and `make` checks the fields exist, so an upgrade that renames them
 * fails at start (and in the tests) instead of reporting zeros.
 */
interface PoolInternals {
  readonly _allConnections: { readonly length: number }
  readonly _freeConnections: { readonly length: number }
  readonly _connectionQueue: { readonly length: number }
  readonly config: { readonly connectionLimit: number }
}

const internals = (pool: Mysql.Pool): PoolInternals | undefined => {
  const candidate = pool as unknown as Partial<PoolInternals>
  return [candidate._allConnections, candidate._freeConnections, candidate._connectionQueue].every((queue) => typeof queue?.length === "number")
      && typeof candidate.config?.connectionLimit === "number"
    ? candidate as PoolInternals
    : undefined
}

/**
 * A client whose pool opens connections on demand up to `maxConnections` and
 * keeps them open while idle (mysql2's default). @effect/sql-mysql2 sets
 * `maxIdle: 0`, which closes every idle connection within a second, so a service
 * with pauses in its traffic paid a new connection and login for most requests.
 */
export const make = (options: Options): Effect.Effect<Pool, SqlError.SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function* () {
    const compiler = MysqlClient.makeCompiler(options.transformQueryNames)
    const transformRows = options.transformResultNames
      ? Statement.defaultTransforms(options.transformResultNames).array
      : undefined

    const pool = Mysql.createPool({
      host: options.host,
      port: options.port,
      database: options.database,
      user: options.user,
      password: Redacted.value(options.password),
      connectTimeout: Duration.toMillis(options.connectTimeout),
      connectionLimit: options.maxConnections,
      // Migrations are files of several statements.
      multipleStatements: true,
      supportBigNumbers: true
    })
    // Ended with the scope even when the first connection fails (each retry at start makes a new pool).
    yield* Effect.addFinalizer(() => Effect.async<void>((resume) => void pool.end(() => resume(Effect.void))))
    const bookkeeping = internals(pool)
    if (bookkeeping === undefined) {
      return yield* Effect.dieMessage("mysql2's pool no longer has _allConnections, _freeConnections, _connectionQueue: update packages/platform/src/internal/MysqlPool.ts")
    }
    // The library's connection check, asking for the version while it is at it.
    const serverVersion = yield* Effect.async<string, SqlError.SqlError>((resume) => {
      pool.query<Array<Mysql.RowDataPacket>>("SELECT VERSION() AS version", (cause, rows) => {
        resume(cause ? Effect.fail(new SqlError.SqlError({ cause, message: "MysqlClient: Failed to connect" })) : Effect.succeed(String(rows[0]?.version ?? "")))
      })
    })

    const acquireConnection = Effect.acquireRelease(
      Effect.async<Mysql.PoolConnection, SqlError.SqlError>((resume) => {
        pool.getConnection((cause, connection) => {
          resume(cause
            ? Effect.fail(new SqlError.SqlError({ cause, message: "Failed to acquire connection" }))
            : Effect.succeed(connection))
        })
      }),
      (connection) => Effect.sync(() => connection.release())
    )

    const spanAttributes: Array<[string, unknown]> = [
      ["db.system.name", "mysql"],
      ["server.address", options.host],
      ["server.port", options.port],
      ["db.namespace", options.database]
    ]
    const client = yield* SqlClient.make({
      acquirer: Effect.succeed(makeConnection(pool)),
      transactionAcquirer: Effect.map(acquireConnection, makeConnection),
      compiler,
      spanAttributes,
      transformRows
    })
    const config: MysqlClient.MysqlClientConfig = {
      host: options.host,
      port: options.port,
      database: options.database,
      username: options.user,
      password: options.password,
      maxConnections: options.maxConnections,
      transformQueryNames: options.transformQueryNames,
      transformResultNames: options.transformResultNames
    }
    return {
      serverVersion,
      client: Object.assign(client, { [MysqlClient.TypeId]: MysqlClient.TypeId, config }) as MysqlClient.MysqlClient,
      state: () => {
        const all = bookkeeping._allConnections.length
        const idle = bookkeeping._freeConnections.length
        return { used: all - idle, idle, pending: bookkeeping._connectionQueue.length, max: bookkeeping.config.connectionLimit }
      }
    }
  })

type TransformRows = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

/** Statements on the pool (each borrows a connection for itself) or on one connection (a transaction). */
const makeConnection = (target: Mysql.Pool | Mysql.PoolConnection): Connection => {
  const runRaw = (sql: string, values?: ReadonlyArray<unknown>, rowsAsArray = false, method: "execute" | "query" = "execute") =>
    Effect.async<unknown, SqlError.SqlError>((resume) => {
      const options = { sql, values: values as Array<unknown> | undefined, rowsAsArray }
      const callback = (cause: unknown, results: unknown) => {
        resume(cause ? Effect.fail(new SqlError.SqlError({ cause, message: "Failed to execute statement" })) : Effect.succeed(results))
      }
      if (method === "query") target.query(options, callback)
      else target.execute(options, callback)
    })
  const run = (sql: string, values?: ReadonlyArray<unknown>, rowsAsArray = false, method: "execute" | "query" = "execute") =>
    Effect.map(runRaw(sql, values, rowsAsArray, method), (results) => Array.isArray(results) ? results : [])
  return {
    execute: (sql, params, transformRows: TransformRows) =>
      transformRows ? Effect.map(run(sql, params), transformRows) : run(sql, params),
    executeRaw: (sql, params) => runRaw(sql, params),
    executeValues: (sql, params) => run(sql, params, true),
    executeUnprepared: (sql, params, transformRows: TransformRows) =>
      transformRows ? Effect.map(run(sql, params, false, "query"), transformRows) : run(sql, params, false, "query"),
    executeStream: (sql, params, transformRows: TransformRows) => {
      const stream = queryStream(target, sql, params)
      return transformRows
        ? Stream.mapChunks(stream, (chunk) => Chunk.unsafeFromArray(transformRows(Chunk.toReadonlyArray(chunk) as Array<object>)))
        : stream
    }
  }
}

const queryStream = (target: Mysql.Pool | Mysql.PoolConnection, sql: string, params?: ReadonlyArray<unknown>) =>
  asyncPauseResume<unknown, SqlError.SqlError>((emit) => {
    const query = target.query(sql, params as Array<unknown>).stream()
    let buffer: Array<unknown> = []
    let taskPending = false
    query.on("error", (cause: unknown) => emit.fail(new SqlError.SqlError({ cause, message: "Failed to stream statement" })))
    query.on("data", (row: unknown) => {
      buffer.push(row)
      if (!taskPending) {
        taskPending = true
        queueMicrotask(() => {
          const items = buffer
          buffer = []
          emit.array(items)
          taskPending = false
        })
      }
    })
    query.on("end", () => emit.end())
    return {
      onInterrupt: Effect.sync(() => query.destroy()),
      onPause: Effect.sync(() => query.pause()),
      onResume: Effect.sync(() => query.resume())
    }
  })
