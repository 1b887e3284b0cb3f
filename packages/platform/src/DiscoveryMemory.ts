/**
 * In-process discovery registry: every service in one process shares it. It
 * behaves like Consul with a TTL check per instance: an instance that stops
 * reporting for `ttl` drops out of the healthy set, and one that stays unhealthy
 * for `deregisterCriticalAfter` more is removed.
 */
import { Clock, Duration, Effect, Layer, Option, PubSub, Queue, Stream } from "effect"
import { Discovery, DiscoveryError, type Instance } from "./Discovery.js"

export interface Options {
  /** An instance that has not reported for this long is no longer healthy. Default 5 seconds. */
  readonly ttl?: Duration.DurationInput
  /** An instance unhealthy for this long is removed. Default 1 minute. */
  readonly deregisterCriticalAfter?: Duration.DurationInput
}

interface Entry {
  readonly instance: Instance
  lastSeen: number
}

const sameInstances = (a: ReadonlyArray<Instance>, b: ReadonlyArray<Instance>) => {
  if (a.length !== b.length) return false
  const key = (i: Instance) => `${i.id}@${i.host}:${i.port}`
  const keys = new Set(a.map(key))
  return b.every((i) => keys.has(key(i)))
}

export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const ttl = Duration.decode(options.ttl ?? "5 seconds")
    const ttlMillis = Duration.toMillis(ttl)
    const removeAfterMillis = ttlMillis + Duration.toMillis(options.deregisterCriticalAfter ?? "1 minute")
    const entries = new Map<string, Entry>()
    // Wakes watchers; sliding(1) because a watcher only needs to know that something changed.
    const changed = yield* PubSub.sliding<void>(1)
    const notify = Effect.asVoid(PubSub.publish(changed, undefined))

    const isHealthy = (entry: Entry, now: number) => now - entry.lastSeen <= ttlMillis
    const removeExpired = (now: number) => {
      for (const [id, entry] of entries) {
        if (now - entry.lastSeen > removeAfterMillis) entries.delete(id)
      }
    }
    const healthyAt = (service: string, now: number) => {
      removeExpired(now)
      return [...entries.values()]
        .filter((entry) => entry.instance.service === service && isHealthy(entry, now))
        .map((entry) => entry.instance)
    }
    /** When the next healthy instance of `service` goes stale, if any. */
    const nextExpiry = (service: string, now: number): number | undefined => {
      let next: number | undefined
      for (const entry of entries.values()) {
        if (entry.instance.service !== service || !isHealthy(entry, now)) continue
        const expiry = entry.lastSeen + ttlMillis + 1
        if (next === undefined || expiry < next) next = expiry
      }
      return next
    }

    const watch = (service: string): Stream.Stream<ReadonlyArray<Instance>> =>
      Stream.unwrapScoped(Effect.gen(function*() {
        // Subscribed before the first read, so no change can slip between the two.
        const wakeups = yield* PubSub.subscribe(changed)
        const nextView = (previous: ReadonlyArray<Instance> | undefined): Effect.Effect<ReadonlyArray<Instance>> =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            const current = healthyAt(service, now)
            if (previous === undefined || !sameInstances(previous, current)) return current
            const expiry = nextExpiry(service, now)
            yield* Effect.raceFirst(
              Queue.take(wakeups),
              expiry === undefined ? Effect.never : Effect.sleep(Duration.millis(expiry - now))
            )
            return yield* nextView(previous)
          })
        return Stream.unfoldEffect(
          undefined as ReadonlyArray<Instance> | undefined,
          (previous) => Effect.map(nextView(previous), (current) => Option.some([current, current] as const))
        )
      }))

    return {
      ...Discovery.of({
        listedBy: "instances",
        ttl,
        register: (instance) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            entries.set(instance.id, { instance, lastSeen: now })
            return notify
          }),
        deregister: (instanceId) => Effect.suspend(() => entries.delete(instanceId) ? notify : Effect.void),
        reportHealthy: (instanceId) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            removeExpired(now)
            const entry = entries.get(instanceId)
            if (entry === undefined) {
              return Effect.fail(
                new DiscoveryError({ operation: "reportHealthy", cause: `unknown instance ${instanceId}` })
              )
            }
            const wasHealthy = isHealthy(entry, now)
            entry.lastSeen = now
            return wasHealthy ? Effect.void : notify
          }),
        healthy: (service) => Effect.map(Clock.currentTimeMillis, (now) => healthyAt(service, now)),
        watch
      }),
      /** Every registered instance of `service`, healthy or not (until removed): what Consul answers without `?passing`. */
      registered: (service: string): Effect.Effect<ReadonlyArray<Instance>> =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          removeExpired(now)
          return [...entries.values()].filter((entry) => entry.instance.service === service).map((entry) =>
            entry.instance
          )
        })
    }
  })

export const layer = (options: Options = {}): Layer.Layer<Discovery> => Layer.effect(Discovery, make(options))
