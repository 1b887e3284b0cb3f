/**
 * Hosts one service: its gRPC server, its HTTP listener (JSON API, Effect RPC and
 * `GET /metrics`) and its registration in discovery. Registration happens once the HTTP listener
 * is up and is withdrawn first on stop, so callers stop picking this instance
 * before its servers drain.
 */
import { HttpServer } from "@effect/platform"
import { Context, Effect, Layer } from "effect"
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
}>() {}

export interface Options<E, R> {
  readonly service: string
  readonly config: ServerConfig
  readonly grpcServices: ReadonlyArray<GrpcServer.Service<never>>
  readonly descriptorSet: Buffer
  readonly httpRoutes: Layer.Layer<never, E, R>
}

export const layer = <E, R>(options: Options<E, R>) => {
  const { config } = options
  const maxRequestBytes = config.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES
  const grpc = GrpcServer.layer({
    host: config.host,
    port: config.grpcPort,
    services: options.grpcServices,
    descriptorSet: options.descriptorSet,
    shutdownTimeout: config.shutdownTimeout,
    healthCheck: { interval: config.healthCheckInterval, timeout: config.healthCheckTimeout },
    maxReceiveMessageBytes: maxRequestBytes
  })
  const http = Http.serve(Layer.merge(options.httpRoutes, Metrics.route(options.service)), {
    host: config.host,
    port: config.httpPort,
    shutdownTimeout: config.shutdownTimeout,
    maxBodyBytes: maxRequestBytes,
    // While Effect RPC travels as HTTP bodies, its messages get their own limit.
    maxBodyBytesAt: { [RpcTransport.PATH]: config.maxRpcMessageBytes ?? DEFAULT_MAX_RPC_MESSAGE_BYTES }
  })
  const registration = Layer.unwrapEffect(
    Effect.map(HttpServer.HttpServer, (server) =>
      Registration.layer({ service: options.service, host: config.advertiseHost, port: config.advertisePort ?? Http.boundPort(server) }))
  )
  const ports = Layer.effect(
    BoundPorts,
    Effect.all({ grpc: Effect.map(GrpcServer.GrpcServer, (s) => s.port), http: Effect.map(HttpServer.HttpServer, Http.boundPort) })
  )
  return Layer.merge(ports, registration).pipe(Layer.provide(Layer.merge(grpc, http)))
}

