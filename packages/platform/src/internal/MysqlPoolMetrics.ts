/**
 * How a pool's connections are asked for, at `/metrics`: OpenTelemetry's
 * database client connection metrics (`db.client.connection.*`) that can be had
 * from what mysql2 publishes, its `mysql2:pool:connect` tracing channel around
 * every request for a pool connection (statements borrow one inside mysql2,
 * transactions hold one). The channel carries no pool, only where it connects,
 * so pools are told apart by `pool_name`, `host:port/database`: two pools of one
 * process to the same database (services sharing a process) are reported
 * together. Which connections are open, lent or idle is the pool's own private
 * bookkeeping, and is not reported.
 *
 * A diagnostics channel is process-wide, so the tally is too: one subscription
 * while any pool is open.
 */
import { Effect, Metric, MetricLabel, type Scope } from "effect"
import type { PoolConnectTraceContext } from "mysql2"
import { tracingChannel } from "node:diagnostics_channel"
import { performance } from "node:perf_hooks"
import * as Metrics from "../Metrics.js"

const connectionMax = Metric.gauge("db_client_connection_max", {
  description: "The most connections the pool opens (MYSQL_MAX_CONNECTIONS)"
})
const pendingRequests = Metric.gauge("db_client_connection_pending_requests", {
  description:
    "Requests for a connection not answered yet: all the pool's connections are in use, or one is being opened"
})
const waitTime = Metric.histogram(
  "db_client_connection_wait_time_seconds",
  Metrics.latencyBoundaries,
  "Time a request waited to obtain a connection from the pool"
)

/** `host:port/database`, as OpenTelemetry suggests. */
export const poolName = (
  target: { readonly host: string; readonly port: number | undefined; readonly database: string }
) => `${target.host}:${target.port}/${target.database}`

interface Tally {
  readonly labels: ReadonlyArray<MetricLabel.MetricLabel>
  /** Of each open pool of this name. */
  readonly maxConnections: Set<{ readonly max: number }>
  pending: number
}

const tallies = new Map<string, Tally>()
const requestedAt = new WeakMap<object, number>()

const tallyOf = (request: PoolConnectTraceContext) =>
  tallies.get(poolName({ host: request.serverAddress, port: request.serverPort, database: request.database }))

const channel = tracingChannel<unknown, PoolConnectTraceContext>("mysql2:pool:connect")
const ignore = () => {}
const subscriber = {
  start: (request: PoolConnectTraceContext) => {
    const tally = tallyOf(request)
    if (tally === undefined) return
    tally.pending++
    requestedAt.set(request, performance.now())
  },
  // The request's callback: a connection, or the error the pool answered.
  asyncStart: (request: PoolConnectTraceContext & { readonly error?: unknown }) => {
    const at = requestedAt.get(request)
    const tally = tallyOf(request)
    if (at === undefined || tally === undefined) return
    requestedAt.delete(request)
    tally.pending--
    if (request.error === undefined) waitTime.unsafeUpdate((performance.now() - at) / 1000, tally.labels)
  },
  end: ignore,
  asyncEnd: ignore,
  error: ignore
}

const record = (tally: Tally) => {
  let max = 0
  for (const pool of tally.maxConnections) max += pool.max
  pendingRequests.unsafeUpdate(tally.pending, tally.labels)
  connectionMax.unsafeUpdate(max, tally.labels)
}

/** Reports the pool named `name`, opening at most `maxConnections`, for as long as the scope is open. */
export const report = (name: string, maxConnections: number): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pool = { max: maxConnections }
    const tally = yield* Effect.acquireRelease(
      Effect.sync(() => {
        if (tallies.size === 0) channel.subscribe(subscriber)
        let tally = tallies.get(name)
        if (tally === undefined) {
          tally = { labels: [MetricLabel.make("pool_name", name)], maxConnections: new Set(), pending: 0 }
          tallies.set(name, tally)
        }
        tally.maxConnections.add(pool)
        return tally
      }),
      (tally) =>
        Effect.sync(() => {
          tally.maxConnections.delete(pool)
          if (tally.maxConnections.size === 0) {
            // Requests still unanswered were answered "pool closed" when it ended.
            tally.pending = 0
            tallies.delete(name)
            if (tallies.size === 0) channel.unsubscribe(subscriber)
          }
          record(tally)
        })
    )
    yield* Metrics.observeAtScrape(Effect.sync(() => record(tally)))
  })
