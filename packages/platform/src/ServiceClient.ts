/**
 * Calls another service over Effect RPC with client-side load balancing: the
 * healthy instances come from a view that discovery keeps current (no lookup per
 * call), calls rotate over them, one typed client per instance is created once and
 * reused, an instance that cannot be reached is skipped for a while and then tried
 * again, unavailability is retried with jittered backoff (on another instance when
 * there is one), and every call is bounded by the caller's deadline.
 */
import type { HttpClient } from "@effect/platform"
import { type Rpc, type RpcClient, type RpcGroup } from "@effect/rpc"
import { RpcClientError } from "@effect/rpc/RpcClientError"
import { DeadlineExceeded, ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Clock, Duration, Effect, Option, RcMap, Schedule, type Scope, Stream, SubscriptionRef } from "effect"
import * as Deadline from "./Deadline.js"
import { Discovery, type Instance } from "./Discovery.js"
import * as RpcTransport from "./RpcTransport.js"

export interface Options {
  /** Service name in discovery. */
  readonly service: string
  /** Upper bound of one call, retries included, when the caller set no earlier deadline. */
  readonly timeout?: Duration.DurationInput
  /** Retries after the first attempt while the service is unavailable. */
  readonly retries?: number
  /** First backoff delay; later ones grow exponentially, with jitter. */
  readonly backoff?: Duration.DurationInput
  /**
   * How long an instance that could not be reached is skipped; it doubles with each
   * failure in a row, up to `maxSkip`. Default 1 second.
   */
  readonly skip?: Duration.DurationInput
  /** Default 30 seconds. */
  readonly maxSkip?: Duration.DurationInput
}

export interface ServiceClient<Rpcs extends Rpc.Any> {
  readonly call: <A, E>(
    operation: string,
    f: (client: RpcClient.RpcClient<Rpcs, RpcClientError>) => Effect.Effect<A, E>
  ) => Effect.Effect<A, Exclude<E, RpcClientError> | ServiceUnavailable | DeadlineExceeded>
}

const baseUrl = (instance: Instance) => `http://${instance.host}:${instance.port}`

export const make = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  options: Options
): Effect.Effect<ServiceClient<Rpcs>, never, Discovery | HttpClient.HttpClient | Scope.Scope | Rpc.MiddlewareClient<Rpcs>> =>
  Effect.gen(function* () {
    const discovery = yield* Discovery
    const clients = yield* RcMap.make({
      lookup: (url: string) => RpcTransport.makeClient(group, url),
      idleTimeToLive: "5 minutes"
    })
    const timeout = Duration.decode(options.timeout ?? "5 seconds")
    const retryPolicy = Schedule.exponential(options.backoff ?? "25 millis").pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(options.retries ?? 3))
    )
    const skipMillis = Duration.toMillis(options.skip ?? "1 second")
    const maxSkipMillis = Duration.toMillis(options.maxSkip ?? "30 seconds")
    const unavailable = (reason: string) => new ServiceUnavailable({ service: options.service, reason })

    // None until discovery first answers.
    const view = yield* SubscriptionRef.make<Option.Option<ReadonlyArray<Instance>>>(Option.none())
    /** Instances that could not be reached: failures in a row, and until when they are skipped. */
    const unreachable = new Map<string, { readonly failures: number; readonly until: number }>()
    let next = 0

    yield* discovery.watch(options.service).pipe(
      Stream.runForEach((instances) =>
        Effect.gen(function* () {
          const previous = Option.getOrElse(yield* SubscriptionRef.get(view), () => [])
          yield* SubscriptionRef.set(view, Option.some(instances))
          const current = new Set(instances.map(baseUrl))
          for (const gone of previous) {
            if (current.has(baseUrl(gone))) continue
            unreachable.delete(gone.id)
            // Released once no call uses it any more.
            yield* RcMap.invalidate(clients, baseUrl(gone))
          }
        })),
      Effect.forkScoped
    )

    const instances = Effect.flatMap(SubscriptionRef.get(view), (current) =>
      Option.isSome(current)
        ? Effect.succeed(current.value)
        // Before the first view: one lookup, which fails fast when discovery cannot answer.
        : Effect.mapError(discovery.healthy(options.service), (error) => unavailable(error.message)))

    const pick = (candidates: ReadonlyArray<Instance>, now: number): Instance => {
      const reachable = candidates.filter((instance) => (unreachable.get(instance.id)?.until ?? 0) <= now)
      // When every instance failed recently, trying one beats refusing the call.
      const pool = reachable.length > 0 ? reachable : candidates
      return pool[next++ % pool.length]!
    }

    const markUnreachable = (instance: Instance, reason: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const failures = (unreachable.get(instance.id)?.failures ?? 0) + 1
        const skip = Math.min(skipMillis * 2 ** (failures - 1), maxSkipMillis)
        unreachable.set(instance.id, { failures, until: now + skip })
        return Effect.logWarning("instance unreachable; skipping it").pipe(
          Effect.annotateLogs({ service: options.service, instance: instance.id, for: Duration.format(Duration.millis(skip)), reason })
        )
      })

    const attempt = <A, E>(f: (client: RpcClient.RpcClient<Rpcs, RpcClientError>) => Effect.Effect<A, E>) =>
      Effect.gen(function* () {
        const candidates = yield* instances
        if (candidates.length === 0) return yield* unavailable("no healthy instance")
        const instance = pick(candidates, yield* Clock.currentTimeMillis)
        const client = yield* RcMap.get(clients, baseUrl(instance))
        return yield* f(client).pipe(
          Effect.tap(() => Effect.sync(() => unreachable.delete(instance.id))),
          Effect.catchIf(
            (error): error is Extract<E, RpcClientError> => error instanceof RpcClientError,
            (error) =>
              markUnreachable(instance, error.message).pipe(Effect.zipRight(Effect.fail(unavailable(`${instance.id}: ${error.message}`))))
          )
        )
      }).pipe(Effect.scoped) as Effect.Effect<A, Exclude<E, RpcClientError> | ServiceUnavailable>

    return {
      call: (operation, f) =>
        Effect.flatMap(Deadline.remaining(timeout), (budget) =>
          attempt(f).pipe(
            Effect.retry({ schedule: retryPolicy, while: (error) => error instanceof ServiceUnavailable }),
            Effect.timeoutFail({ duration: budget, onTimeout: () => new DeadlineExceeded({ operation }) })
          ))
    }
  })
