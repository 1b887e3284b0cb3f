/**
 * Keeps this instance registered for as long as the layer lives: registers on
 * build, heartbeats in the background, deregisters when the scope closes (every
 * graceful stop, and a start that fails after registering). Where the platform
 * lists instances (`Discovery.listedBy`), it only says so in the log: readiness
 * (gRPC health) is then what takes an instance in and out.
 */
import { Duration, Effect, Layer, Random, Schedule } from "effect"
import { Discovery, type Instance } from "./Discovery.js"

export interface Options {
  readonly service: string
  readonly host: string
  readonly port: number
  /** Default: a third of the registry's TTL, so two heartbeats in a row can be lost. */
  readonly heartbeatInterval?: Duration.DurationInput
}

export const layer = (options: Options): Layer.Layer<never, never, Discovery> =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const discovery = yield* Discovery
      if (discovery.listedBy === "platform") {
        return yield* Effect.logInfo("not registering: the platform lists instances").pipe(
          Effect.annotateLogs("address", `${options.host}:${options.port}`)
        )
      }
      const suffix = (yield* Random.nextInt).toString(16).replace("-", "")
      const instance: Instance = {
        id: `${options.service}-${suffix}`,
        service: options.service,
        host: options.host,
        port: options.port
      }
      const heartbeatInterval = options.heartbeatInterval ?? Duration.millis(Duration.toMillis(discovery.ttl) / 3)
      const register = discovery.register(instance).pipe(
        Effect.tapError((error) => Effect.logWarning("registration failed; retrying", error)),
        Effect.retry(Schedule.exponential("100 millis").pipe(Schedule.jittered, Schedule.upTo("30 seconds"))),
        Effect.orDie
      )
      // Interruptible: a service that cannot reach its registry yet can still be stopped.
      yield* Effect.acquireRelease(Effect.interruptible(register), () =>
        discovery.deregister(instance.id).pipe(
          Effect.tap(() => Effect.logInfo("deregistered").pipe(Effect.annotateLogs("instance", instance.id))),
          Effect.catchAll((error) => Effect.logWarning("deregistration failed", error))
        ))
      yield* Effect.logInfo("registered").pipe(
        Effect.annotateLogs({ instance: instance.id, address: `${instance.host}:${instance.port}` })
      )
      // A refused heartbeat means the registry forgot us (removed after a long outage,
      // an agent restarted without its state): register again. If the registry is
      // unreachable, registering fails too and the next tick tries again.
      yield* discovery.reportHealthy(instance.id).pipe(
        Effect.catchAll((refused) =>
          Effect.logWarning("heartbeat failed; registering again", refused).pipe(
            Effect.zipRight(discovery.register(instance))
          )
        ),
        Effect.catchAll((error) => Effect.logWarning("registering again failed; next heartbeat retries", error)),
        Effect.repeat(Schedule.spaced(heartbeatInterval)),
        Effect.forkScoped
      )
    }).pipe(Effect.annotateLogs("service", options.service))
  )
