/**
 * Effect RPC between services: one transport (HTTP POST of NDJSON at `/rpc`),
 * chosen here once for every server and client. Trace context travels with each
 * request (client and server spans `RpcClient.<tag>` / `RpcServer.<tag>`); every
 * served call is counted and timed like a gRPC call.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Rpc, RpcClient, type RpcGroup, RpcSerialization, RpcServer } from "@effect/rpc"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import { Cause, Context, Effect, Exit, Layer, type Scope } from "effect"
import { performance } from "node:perf_hooks"
import * as Metrics from "./Metrics.js"

export const PATH = "/rpc"

/** The outcome of a call as a metric label: OK, the typed error's tag, CANCELLED or DEFECT. */
const statusOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "OK"
  if (Cause.isInterruptedOnly(exit.cause)) return "CANCELLED"
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "None") return "DEFECT"
  const error = failure.value
  return typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string" ? error._tag : "ERROR"
}

/**
 * A defect (a bug) is logged at ERROR with its cause and reaches the caller as
 * "internal error" only: RpcServer would send the defect itself, text and all.
 */
const concealingDefects = (effect: Effect.Effect<unknown, unknown>, tag: string) =>
  Effect.catchAllCause(effect, (cause) =>
    Cause.isDie(cause) && !Cause.isInterruptedOnly(cause)
      ? Effect.logError("Effect RPC handler failed", cause).pipe(
        Effect.annotateLogs("rpc.method", tag),
        Effect.zipRight(Effect.die("internal error"))
      )
      : Effect.failCause(cause))

const measured = (effect: Effect.Effect<unknown, unknown>, record: Metrics.CallRecorder, tag: string) =>
  Effect.suspend(() => {
    const started = performance.now()
    return Effect.onExit(concealingDefects(effect, tag), (exit) => Effect.sync(() => record(statusOf(exit), (performance.now() - started) / 1000)))
  })

/**
 * The group's handlers, each wrapped to count and time its calls. The handlers are
 * read from and put back into the context under the keys RpcServer looks up.
 */
const instrumented = <Rpcs extends Rpc.Any>(group: RpcGroup.RpcGroup<Rpcs>) =>
  Layer.effectContext(Effect.gen(function* () {
    const context = yield* Effect.context<Rpc.ToHandler<Rpcs>>()
    const service = (group as unknown as { readonly name?: string }).name ?? "rpc"
    const handlers = new Map<string, unknown>()
    for (const [tag, rpc] of group.requests as unknown as ReadonlyMap<string, Rpc.AnyWithProps>) {
      const entry = context.unsafeMap.get(rpc.key) as Rpc.Handler<string> | undefined
      if (entry === undefined) continue
      const record = Metrics.serverCallRecorder("effect_rpc", service, tag)
      handlers.set(rpc.key, {
        ...entry,
        handler: (payload: unknown, options: Parameters<Rpc.Handler<string>["handler"]>[1]) => {
          const result = entry.handler(payload, options)
          if (Effect.isEffect(result)) return measured(result, record, tag)
          if (Rpc.isWrapper(result) && Effect.isEffect(result.value)) {
            return Rpc.wrap({ fork: result.fork, uninterruptible: result.uninterruptible })(measured(result.value as Effect.Effect<unknown, unknown>, record, tag))
          }
          return result // streams are not measured per call
        }
      })
    }
    return Context.unsafeMake(handlers) as Context.Context<Rpc.ToHandler<Rpcs>>
  }))

/** Registers `group`'s handlers at {@link PATH} on the service's HTTP router. */
export const route = <Rpcs extends Rpc.Any>(group: RpcGroup.RpcGroup<Rpcs>) =>
  RpcServer.layerHttpRouter({ group, path: PATH, protocol: "http" }).pipe(
    Layer.provide(RpcSerialization.layerNdjson),
    Layer.provide(instrumented(group))
  )

/** A typed client for the service at `baseUrl` (`http://host:port`); created once per instance and reused. */
export const makeClient = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  baseUrl: string
): Effect.Effect<RpcClient.RpcClient<Rpcs, RpcClientError>, never, HttpClient.HttpClient | Scope.Scope | Rpc.MiddlewareClient<Rpcs>> =>
  Effect.gen(function* () {
    const http = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest(HttpClientRequest.prependUrl(`${baseUrl}${PATH}`)),
      // A non-2xx answer (a proxy's error page, a port now used by something else) is
      // a transport failure: RpcClientError, hence retryable unavailability.
      HttpClient.filterStatusOk
    )
    const protocol = yield* RpcClient.makeProtocolHttp(http).pipe(Effect.provide(RpcSerialization.layerNdjson))
    return yield* RpcClient.make(group).pipe(Effect.provideService(RpcClient.Protocol, protocol))
  })
