/**
 * Calls another service over Effect RPC: instances come from discovery, one typed
 * client per instance is created once and reused, attempts rotate over healthy
 * instances, unavailability is retried with jittered backoff, and every call is
 * bounded by the caller's deadline.
 */
import type { HttpClient } from "@effect/platform"
import { type Rpc, type RpcClient, type RpcGroup } from "@effect/rpc"
import { RpcClientError } from "@effect/rpc/RpcClientError"
import { DeadlineExceeded, ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Duration, Effect, RcMap, Schedule, type Scope } from "effect"
import * as Deadline from "./Deadline.js"
import { Discovery } from "./Discovery.js"
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
}

export interface ServiceClient<Rpcs extends Rpc.Any> {
  readonly call: <A, E>(
    operation: string,
    f: (client: RpcClient.RpcClient<Rpcs, RpcClientError>) => Effect.Effect<A, E>
  ) => Effect.Effect<A, Exclude<E, RpcClientError> | ServiceUnavailable | DeadlineExceeded>
}

export const make = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  options: Options
): Effect.Effect<ServiceClient<Rpcs>, never, Discovery | HttpClient.HttpClient | Scope.Scope | Rpc.MiddlewareClient<Rpcs>> =>
  Effect.gen(function* () {
    const discovery = yield* Discovery
    const clients = yield* RcMap.make({
      lookup: (baseUrl: string) => RpcTransport.makeClient(group, baseUrl),
      idleTimeToLive: "5 minutes"
    })
    const timeout = Duration.decode(options.timeout ?? "5 seconds")
    const retryPolicy = Schedule.exponential(options.backoff ?? "25 millis").pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(options.retries ?? 3))
    )
    const unavailable = (reason: string) => new ServiceUnavailable({ service: options.service, reason })
    let next = 0

    const attempt = <A, E>(f: (client: RpcClient.RpcClient<Rpcs, RpcClientError>) => Effect.Effect<A, E>) =>
      Effect.gen(function* () {
        const instances = yield* discovery.healthy(options.service).pipe(Effect.mapError((error) => unavailable(error.message)))
        if (instances.length === 0) return yield* unavailable("no healthy instance")
        const instance = instances[next++ % instances.length]!
        const client = yield* RcMap.get(clients, `http://${instance.host}:${instance.port}`)
        return yield* f(client).pipe(
          Effect.catchIf(
            (error): error is Extract<E, RpcClientError> => error instanceof RpcClientError,
            (error) => unavailable(`${instance.id}: ${error.message}`)
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
