/**
 * Effect RPC between services: one transport (HTTP POST of NDJSON at `/rpc`),
 * chosen here once for every server and client.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { type Rpc, RpcClient, type RpcGroup, RpcSerialization, RpcServer } from "@effect/rpc"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import { Effect, Layer, type Scope } from "effect"

export const PATH = "/rpc"

/** Registers `group`'s handlers at {@link PATH} on the service's HTTP router. */
export const route = <Rpcs extends Rpc.Any>(group: RpcGroup.RpcGroup<Rpcs>) =>
  RpcServer.layerHttpRouter({ group, path: PATH, protocol: "http" }).pipe(
    Layer.provide(RpcSerialization.layerNdjson)
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
