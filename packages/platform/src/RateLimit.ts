/**
 * Per-caller rate limits: a token bucket per key (a token's subject, or a peer
 * address), refilled at `rate` per second up to `burst`. Taking is synchronous
 * and allocation-free for a known caller, so it sits on a call's path before
 * any fiber starts. Memory is bounded: buckets idle long enough to be full again
 * are dropped (they would behave exactly like new ones), and at `maxKeys` the
 * oldest tenth goes.
 */
import { Config, Metric, MetricLabel } from "effect"
import { performance } from "node:perf_hooks"

/** How many calls a caller may make: `rate` per second on average, `burst` at once. */
export interface RateLimitConfig {
  /** Calls per second per caller; 0 turns the limit off. */
  readonly rate: number
  /** Calls a caller may make at once, after being idle; at least 1. */
  readonly burst: number
}

/** No limit. */
export const off: RateLimitConfig = { rate: 0, burst: 1 }

/**
 * The limits a service has unless configured: generous for a person or a
 * program acting for one, low enough that one caller cannot take a service's
 * capacity (a few thousand calls per second) for itself.
 */
export const defaults = {
  /** Every call to the gateway, per peer address. */
  gateway: { rate: 200, burst: 400 },
  /** Writes, per token subject. */
  writes: { rate: 20, burst: 40 }
} as const satisfies Record<string, RateLimitConfig>

/**
 * `RATE_LIMIT_RATE` (calls per second per caller, 0 for none) and
 * `RATE_LIMIT_BURST` (at once; twice the rate when unset).
 */
export const config = (defaults: RateLimitConfig): Config.Config<RateLimitConfig> =>
  Config.all({
    rate: Config.number("rate").pipe(
      Config.validate({ message: "Expected a number of calls per second, 0 or more", validation: (n) => n >= 0 }),
      Config.withDefault(defaults.rate)
    ),
    burst: Config.integer("burst").pipe(
      Config.validate({ message: "Expected a number of calls, 1 or more", validation: (n) => n >= 1 }),
      Config.option
    )
  }).pipe(
    Config.map(({ burst, rate }) => ({
      rate,
      burst: burst._tag === "Some" ? burst.value : rate === defaults.rate ? defaults.burst : Math.max(1, 2 * rate)
    })),
    Config.nested("rateLimit")
  )

/** `rate_limited_calls_total{limit}`: calls refused by a rate limit. */
export const limitedCalls = Metric.counter("rate_limited_calls_total", {
  description: "Calls refused because their caller went over its rate limit, by limit",
  incremental: true
})

/** Takes one call from `key`'s bucket: 0 when admitted, else the milliseconds until one will be. */
export type Limiter = (key: string) => number

interface Bucket {
  tokens: number
  updated: number
}

/**
 * A limiter, or undefined when `config` turns limits off. `limit` names it in
 * the metric (`gateway`, `writes`).
 */
export const make = (
  config: RateLimitConfig,
  options: { readonly limit: string; readonly maxKeys?: number; readonly now?: () => number }
): Limiter | undefined => {
  if (config.rate <= 0) return undefined
  const { burst, rate } = config
  const perMs = rate / 1000
  const maxKeys = options.maxKeys ?? 100_000
  const now = options.now ?? (() => performance.now())
  // A bucket idle this long is full again: the same as no bucket.
  const idleMs = burst / perMs
  const buckets = new Map<string, Bucket>()
  let swept = now()
  const labels = [MetricLabel.make("limit", options.limit)]
  const sweep = (at: number) => {
    swept = at
    for (const [key, bucket] of buckets) {
      if (at - bucket.updated >= idleMs) buckets.delete(key)
    }
  }
  const evictOldest = (count: number) => {
    let left = count
    for (const key of buckets.keys()) {
      if (left-- === 0) break
      buckets.delete(key)
    }
  }
  return (key) => {
    const at = now()
    const bucket = buckets.get(key)
    if (bucket === undefined) {
      // A pass over every bucket, at most once per idle period: were it run for each new
      // caller while the map is full of active ones, a flood of new addresses would cost
      // a whole pass per call.
      if (at - swept >= idleMs) sweep(at)
      // Still full of active callers: the least recently added tenth goes (Map keeps
      // insertion order). One at a time would cost more per new caller, not less: the
      // Map's iteration skips every slot deleted since it last compacted.
      if (buckets.size >= maxKeys) evictOldest(Math.ceil(maxKeys / 10))
      buckets.set(key, { tokens: burst - 1, updated: at })
      return 0
    }
    const tokens = Math.min(burst, bucket.tokens + (at - bucket.updated) * perMs)
    bucket.updated = at
    if (tokens >= 1) {
      bucket.tokens = tokens - 1
      return 0
    }
    bucket.tokens = tokens
    limitedCalls.unsafeUpdate(1, labels)
    return Math.ceil((1 - tokens) / perMs)
  }
}

const IPV4_MAPPED = "::ffff:"

/**
 * A caller's address as one key, from Node's `remoteAddress` (`127.0.0.1`,
 * `::1`, or `::ffff:127.0.0.1` on a dual-stack listener, the same caller as
 * `127.0.0.1`).
 */
export const fromRemoteAddress = (address: string): string =>
  address.startsWith(IPV4_MAPPED) && address.includes(".") ? address.slice(IPV4_MAPPED.length) : address

/**
 * A caller's address as one key, from grpc-js's `getPeer()`: its socket's
 * `${remoteAddress}:${remotePort}`, IPv6 without brackets (`::1:50312`,
 * `::ffff:127.0.0.1:50312`), so the port is what follows the last colon. The
 * key is the address alone: a caller's connections share one budget, and its
 * gRPC and HTTP calls too ({@link fromRemoteAddress} gives the same key).
 */
export const fromGrpcPeer = (peer: string): string => {
  if (peer.startsWith("[")) return fromRemoteAddress(peer.slice(1, peer.indexOf("]")))
  // An IPv4 address without a port (grpc-js leaves the port out when its socket has none).
  if (!peer.includes(":")) return peer
  return fromRemoteAddress(peer.slice(0, peer.lastIndexOf(":")))
}
