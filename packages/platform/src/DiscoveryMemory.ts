/** In-process discovery registry: every service in one process shares it. */
import { Clock, Duration, Effect, Layer } from "effect"
import { Discovery, DiscoveryError, type Instance } from "./Discovery.js"

export interface Options {
  /** An instance that has not reported for this long is no longer healthy. */
  readonly ttl?: Duration.DurationInput
}

export const make = (options: Options = {}) =>
  Effect.sync(() => {
    const ttl = Duration.toMillis(options.ttl ?? "5 seconds")
    const entries = new Map<string, { readonly instance: Instance; lastSeen: number }>()
    return Discovery.of({
      register: (instance) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          entries.set(instance.id, { instance, lastSeen: now })
        }),
      deregister: (instanceId) => Effect.sync(() => void entries.delete(instanceId)),
      reportHealthy: (instanceId) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const entry = entries.get(instanceId)
          if (entry === undefined) {
            return Effect.fail(new DiscoveryError({ operation: "reportHealthy", cause: `unknown instance ${instanceId}` }))
          }
          entry.lastSeen = now
          return Effect.void
        }),
      healthy: (service) =>
        Effect.map(Clock.currentTimeMillis, (now) =>
          [...entries.values()]
            .filter((entry) => entry.instance.service === service && now - entry.lastSeen <= ttl)
            .map((entry) => entry.instance))
    })
  })

export const layer = (options: Options = {}): Layer.Layer<Discovery> => Layer.effect(Discovery, make(options))
