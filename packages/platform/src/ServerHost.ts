/**
 * Hosts one service: its gRPC server, its HTTP listener (JSON API and
 * `GET /metrics`), its Effect RPC listener when it serves one, and its
 * registration in discovery. Registration happens once the listeners are up and
 * is withdrawn first on stop, so callers stop picking this instance before its
 * servers drain.
 */
import { HttpServer } from "@effect/platform"
import { Context, type Duration, Effect, Layer, Option } from "effect"
import { DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_RPC_MESSAGE_BYTES, type ServerConfig } from "./Config.js"
import * as GrpcServer from "./GrpcServer.js"
import * as Http from "./Http.js"
import * as Metrics from "./Metrics.js"
import * as Registration from "./Registration.js"
import * as RpcTransport from "./RpcTransport.js"

/** Ports actually bound (differ from the config when it asked for port 0). */
export class BoundPorts extends Context.Tag("@movieapp/platform/ServerHost/BoundPorts")<BoundPorts, {
  readonly grpc: number
  readonly http: number
  /** The Effect RPC port, for a service that serves Effect RPC. */
  readonly rpc?: number
}>() {}

export interface Options<E, R, ER, RR> {
  readonly service: string
  readonly config: ServerConfig
  readonly grpcServices: ReadonlyArray<GrpcServer.Service<never>>
  readonly descriptorSet: Buffer
  readonly httpRoutes: Layer.Layer<never, E, R>
  /** The longest a gRPC call may run when its caller set no earlier deadline (none by default). */
  readonly callTimeout?: Duration.Duration | undefined
  /** The service's Effect RPC server (`RpcTransport.serve` with its handlers), on `config.rpcPort`. */
  readonly rpcServer?: (options: RpcTransport.ServerOptions) => Layer.Layer<RpcTransport.RpcListener, ER, RR>
}

export const layer = <E, R, ER = never, RR = never>(options: Options<E, R, ER, RR>) => {
  const { config } = options
  const maxRequestBytes = config.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES
  const grpc = GrpcServer.layer({
    host: config.host,
    port: config.grpcPort,
    services: options.grpcServices,
    descriptorSet: options.descriptorSet,
    shutdownTimeout: config.shutdownTimeout,
    callTimeout: options.callTimeout,
    healthCheck: { interval: config.healthCheckInterval, timeout: config.healthCheckTimeout },
    maxReceiveMessageBytes: maxRequestBytes
  })
  const http = Http.serve(Layer.merge(options.httpRoutes, Metrics.route(options.service)), {
    host: config.host,
    port: config.httpPort,
    shutdownTimeout: config.shutdownTimeout,
    maxBodyBytes: maxRequestBytes
  })
  const rpc = options.rpcServer === undefined
    ? Layer.empty
    : options.rpcServer({
      host: config.host,
      port: config.rpcPort ?? 0,
      shutdownTimeout: config.shutdownTimeout,
      maxFrameBytes: config.maxRpcMessageBytes ?? DEFAULT_MAX_RPC_MESSAGE_BYTES
    })
  const listeners = Layer.mergeAll(grpc, http, rpc)
  const rpcPort = Effect.map(Effect.serviceOption(RpcTransport.RpcListener), Option.map((listener) => listener.port))
  const registration = Layer.unwrapEffect(
    Effect.gen(function* () {
      // Others dial the Effect RPC port; a service without one is listed at its HTTP port.
      const httpPort = Http.boundPort(yield* HttpServer.HttpServer)
      const port = config.advertisePort ?? Option.getOrElse(yield* rpcPort, () => httpPort)
      return Registration.layer({ service: options.service, host: config.advertiseHost, port })
    })
  )
  const ports = Layer.effect(
    BoundPorts,
    Effect.gen(function* () {
      const grpc = (yield* GrpcServer.GrpcServer).port
      const http = Http.boundPort(yield* HttpServer.HttpServer)
      const rpc = yield* rpcPort
      // One line with every port, for people and for programs that start a service on port 0.
      yield* Effect.logInfo("listening").pipe(Effect.annotateLogs({
        "grpc.port": grpc,
        "http.port": http,
        ...Option.match(rpc, { onNone: () => ({}), onSome: (port) => ({ "rpc.port": port }) })
      }))
      return Option.match(rpc, { onNone: () => ({ grpc, http }), onSome: (rpc) => ({ grpc, http, rpc }) })
    })
  )
  return Layer.merge(ports, registration).pipe(Layer.provide(listeners))
}
