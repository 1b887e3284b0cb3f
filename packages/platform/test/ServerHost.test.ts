/**
 * A listener whose port is taken stops the service with one line naming the
 * address and the setting that moves it, for each of a service's three
 * listeners, under the service's own setting names or those it is given.
 */
import { Rpc, RpcGroup } from "@effect/rpc"
import { assert, describe, it } from "@effect/vitest"
import { descriptorSet } from "@movieapp/proto/gen/descriptorSet"
import * as Ports from "@movieapp/testkit/Ports"
import { Cause, Duration, Effect, Exit, Layer, Logger, LogLevel, Schema } from "effect"
import type { ServerConfig, ServerSettings } from "../src/Config.js"
import * as DiscoveryMemory from "../src/DiscoveryMemory.js"
import * as Readiness from "../src/Readiness.js"
import * as RpcTransport from "../src/RpcTransport.js"
import * as ServerHost from "../src/ServerHost.js"
import * as Tls from "../src/Tls.js"

class Ping extends RpcGroup.make(Rpc.make("Ping", { success: Schema.String })) {}

/** How building a host with `ports` ended: the ListenError's message, or "listening". */
const start = (
  ports: { readonly grpc: number; readonly http: number; readonly rpc: number },
  settings?: ServerSettings
) => {
  const config: ServerConfig = {
    host: "127.0.0.1",
    grpcPort: ports.grpc,
    httpPort: ports.http,
    rpcPort: ports.rpc,
    advertiseHost: "127.0.0.1",
    shutdownTimeout: Duration.seconds(1),
    ...(settings === undefined ? {} : { settings })
  }
  const host = ServerHost.layer({
    service: "test",
    version: "0.0.0",
    config,
    grpcServices: [],
    descriptorSet,
    httpRoutes: Layer.empty,
    rpcServer: (options) =>
      RpcTransport.serve(Ping, options).pipe(Layer.provide(Ping.toLayer({ Ping: () => Effect.succeed("pong") })))
  }).pipe(
    Layer.provide([DiscoveryMemory.layer(), Readiness.layer, Tls.layer(undefined)]),
    Layer.provide(Logger.minimumLogLevel(LogLevel.None))
  )
  return Effect.scoped(Layer.build(host)).pipe(
    Effect.exit,
    Effect.map(Exit.match({
      onSuccess: () => "listening",
      onFailure: (cause) => {
        const error = Cause.squash(cause)
        return error instanceof ServerHost.ListenError ? `ListenError: ${error.message}` : Cause.pretty(cause)
      }
    }))
  )
}

describe("a listener whose port is taken", () => {
  it.live("gRPC, HTTP, Effect RPC: one line naming the address and SERVER_GRPC_PORT, SERVER_HTTP_PORT or SERVER_RPC_PORT", () =>
    Effect.gen(function*() {
      const taken = yield* Ports.held
      assert.strictEqual(yield* start({ grpc: 0, http: 0, rpc: 0 }), "listening")
      for (
        const [ports, listener, setting] of [
          [{ grpc: taken, http: 0, rpc: 0 }, "gRPC", "SERVER_GRPC_PORT"],
          [{ grpc: 0, http: taken, rpc: 0 }, "HTTP", "SERVER_HTTP_PORT"],
          [{ grpc: 0, http: 0, rpc: taken }, "Effect RPC", "SERVER_RPC_PORT"]
        ] as const
      ) {
        assert.strictEqual(
          yield* start(ports),
          `ListenError: cannot listen for ${listener} on 127.0.0.1:${taken}: the port is in use; set ${setting} to a free port (0 picks one)`
        )
      }
    }).pipe(Effect.scoped))

  it.live("names the settings it is given (the dev stack's METADATA_HTTP_PORT...)", () =>
    Effect.gen(function*() {
      const taken = yield* Ports.held
      const settings = {
        host: "SERVER_HOST",
        grpcPort: "METADATA_GRPC_PORT",
        httpPort: "METADATA_HTTP_PORT",
        rpcPort: "METADATA_RPC_PORT"
      }
      assert.include(yield* start({ grpc: 0, http: taken, rpc: 0 }, settings), "set METADATA_HTTP_PORT to a free port")
    }).pipe(Effect.scoped))
})
