/**
 * Hosts one service: its gRPC server, its HTTP listener (JSON API, `GET /`,
 * `GET /health`, `GET /metrics`), its Effect RPC listener when it serves one, and its
 * registration in discovery. Registration happens once the listeners are up and
 * is withdrawn first on stop, so callers stop picking this instance before its
 * servers drain.
 */
import { HttpLayerRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { Context, Data, type Duration, Effect, Layer, Option } from "effect"
import { createRequire } from "node:module"
import {
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_RPC_MESSAGE_BYTES,
  type ServerConfig,
  serverSettings
} from "./Config.js"
import * as ErrorChain from "./ErrorChain.js"
import * as GrpcServer from "./GrpcServer.js"
import * as Http from "./Http.js"
import * as Metrics from "./Metrics.js"
import * as RateLimit from "./RateLimit.js"
import * as Registration from "./Registration.js"
import * as RpcTransport from "./RpcTransport.js"
import * as Tls from "./Tls.js"

/** Ports actually bound (differ from the config when it asked for port 0). */
export class BoundPorts extends Context.Tag("@movieapp/platform/ServerHost/BoundPorts")<BoundPorts, {
  readonly grpc: number
  readonly http: number
  /** The Effect RPC port, for a service that serves Effect RPC. */
  readonly rpc?: number
}>() {}

/**
 * A listener could not bind its address: one line naming the address, why, and
 * the setting that moves it (`SERVER_GRPC_PORT`, the dev stack's
 * `METADATA_HTTP_PORT`...). The service stops.
 */
export class ListenError extends Data.TaggedError("ListenError")<{
  readonly listener: "gRPC" | "HTTP" | "Effect RPC"
  readonly address: string
  readonly reason: string
}> {
  constructor(
    props: { readonly listener: "gRPC" | "HTTP" | "Effect RPC"; readonly address: string; readonly reason: string }
  ) {
    super(props)
    // An operator's problem, not a bug: a stack trace would only bury the line.
    this.stack = `${this.name}: ${this.message}`
  }

  override get message() {
    return `cannot listen for ${this.listener} on ${this.address}: ${this.reason}`
  }
}

/** The system error behind a failed bind: Node's errors carry it as `code`; grpc-js reports its addresses' errors as text. */
const bindErrorCode = (cause: unknown): string | undefined => {
  const coded = ErrorChain.find(
    cause,
    (link): link is { readonly code: string } => typeof (link as { readonly code?: unknown }).code === "string"
  )
  if (coded !== undefined) return coded.code
  for (const link of ErrorChain.links(cause)) {
    const named = link instanceof Error ? /\b(E[A-Z]{4,})\b/.exec(link.message) : null
    if (named !== null) return named[1]
  }
  return undefined
}

/** Fails a listener's layer that could not bind with a {@link ListenError}; other failures pass. */
const listening = <A, E, R>(
  listener: ListenError["listener"],
  bindFailure: string,
  where: { readonly host: string; readonly port: number; readonly portSetting: string; readonly hostSetting: string }
) =>
(self: Layer.Layer<A, E, R>): Layer.Layer<A, E | ListenError, R> =>
  Layer.catchAll(self, (error): Layer.Layer<A, E | ListenError, R> => {
    if (typeof error !== "object" || error === null || (error as { readonly _tag?: unknown })._tag !== bindFailure) {
      return Layer.fail(error)
    }
    const address = `${where.host.includes(":") ? `[${where.host}]` : where.host}:${where.port}`
    const code = bindErrorCode(error)
    const reason = code === "EADDRINUSE"
      ? `the port is in use; set ${where.portSetting} to a free port (0 picks one)`
      : code === "EACCES"
      ? `not allowed (ports below 1024 need privileges); set ${where.portSetting} to another port`
      : code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN"
      ? `this machine has no such address; set ${where.hostSetting} to one of its addresses, or 0.0.0.0 for all`
      : `${ErrorChain.rootReason(error)}; ${where.portSetting} and ${where.hostSetting} set it`
    return Layer.fail(new ListenError({ listener, address, reason }))
  })

/** The version in the package.json beside the directory of the module at `moduleUrl` (its `src/` or `dist/`). */
export const packageVersion = (moduleUrl: string): string => String(createRequire(moduleUrl)("../package.json").version)

/**
 * `GET /`: what the port serves, for whoever finds it: the service, its version,
 * links to its OpenAPI document, metrics and health, and its gRPC port (where
 * health and reflection are served too). `GET /health`: the server's health as
 * its gRPC health service reports it, 200 `{"status":"SERVING"}` or 503
 * `{"status":"NOT_SERVING"}`.
 */
const serviceRoutes = (service: string, version: string) =>
  Layer.unwrapEffect(Effect.map(GrpcServer.GrpcServer, (grpc) => {
    const index = HttpServerResponse.unsafeJson({
      service,
      version,
      // Every service's HttpApi serves its OpenAPI document there.
      links: { openapi: "/openapi.json", metrics: Metrics.PATH, health: Http.HEALTH_PATH },
      grpc: { port: grpc.port, services: ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"] }
    })
    return Layer.mergeAll(
      HttpLayerRouter.add("GET", "/", Effect.succeed(index)),
      HttpLayerRouter.add(
        "GET",
        Http.HEALTH_PATH,
        Effect.map(
          grpc.serving,
          (serving) =>
            HttpServerResponse.unsafeJson({ status: serving ? "SERVING" : "NOT_SERVING" }, {
              status: serving ? 200 : 503
            })
        )
      )
    )
  }))

export interface Options<E, R, ER, RR> {
  readonly service: string
  /** The service's version, shown at `GET /` (see {@link packageVersion}). */
  readonly version: string
  readonly config: ServerConfig
  readonly grpcServices: ReadonlyArray<GrpcServer.Service<never>>
  readonly descriptorSet: Buffer
  readonly httpRoutes: Layer.Layer<never, E, R>
  /** The longest a gRPC call may run when its caller set no earlier deadline (none by default). */
  readonly callTimeout?: Duration.Duration | undefined
  /**
   * A rate limit on every gRPC call and HTTP request (metrics and health aside)
   * per peer address, one budget for both: the gateway's. None by default.
   */
  readonly rateLimit?: RateLimit.RateLimitConfig | undefined
  /** The service's Effect RPC server (`RpcTransport.serve` with its handlers), on `config.rpcPort`. */
  readonly rpcServer?: (options: RpcTransport.ServerOptions) => Layer.Layer<RpcTransport.RpcListener, ER, RR>
}

/**
 * Every listener serves TLS when the service has a TLS identity ({@link Tls.ServerTls},
 * from `SERVER_TLS_*`), plaintext otherwise.
 */
export const layer = <E, R, ER = never, RR = never>(options: Options<E, R, ER, RR>) =>
  Layer.unwrapEffect(Effect.map(Tls.ServerTls, (tls) => listen(options, Option.getOrUndefined(tls))))

const listen = <E, R, ER, RR>(options: Options<E, R, ER, RR>, tls: Tls.Certificates | undefined) => {
  const { config } = options
  const settings = config.settings ?? serverSettings
  const at = (port: number, portSetting: string) => ({
    host: config.host,
    port,
    portSetting,
    hostSetting: settings.host
  })
  const maxRequestBytes = config.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES
  const limiter = options.rateLimit === undefined ? undefined : RateLimit.make(options.rateLimit, { limit: "calls" })
  const grpc = GrpcServer.layer({
    host: config.host,
    port: config.grpcPort,
    services: options.grpcServices,
    descriptorSet: options.descriptorSet,
    shutdownTimeout: config.shutdownTimeout,
    callTimeout: options.callTimeout,
    healthCheck: { interval: config.healthCheckInterval, timeout: config.healthCheckTimeout },
    maxReceiveMessageBytes: maxRequestBytes,
    tls,
    limiter
  }).pipe(listening("gRPC", "GrpcBindError", at(config.grpcPort, settings.grpcPort)))
  const http = Http.serve(
    Layer.mergeAll(options.httpRoutes, Metrics.route(options.service), serviceRoutes(options.service, options.version)),
    {
      host: config.host,
      port: config.httpPort,
      shutdownTimeout: config.shutdownTimeout,
      maxBodyBytes: maxRequestBytes,
      tls,
      limiter
    }
  ).pipe(listening("HTTP", "ServeError", at(config.httpPort, settings.httpPort)))
  const rpc = options.rpcServer === undefined
    ? Layer.empty
    : options.rpcServer({
      host: config.host,
      port: config.rpcPort ?? 0,
      shutdownTimeout: config.shutdownTimeout,
      maxFrameBytes: config.maxRpcMessageBytes ?? DEFAULT_MAX_RPC_MESSAGE_BYTES,
      tls
    }).pipe(listening("Effect RPC", "SocketServerError", at(config.rpcPort ?? 0, settings.rpcPort)))
  // HTTP after gRPC: its index names the gRPC port, its health is gRPC's.
  const listeners = Layer.merge(http.pipe(Layer.provideMerge(grpc)), rpc)
  const rpcPort = Effect.map(Effect.serviceOption(RpcTransport.RpcListener), Option.map((listener) => listener.port))
  const registration = Layer.unwrapEffect(
    Effect.gen(function*() {
      // Others dial the Effect RPC port; a service without one is listed at its HTTP port.
      const httpPort = Http.boundPort(yield* HttpServer.HttpServer)
      const port = config.advertisePort ?? Option.getOrElse(yield* rpcPort, () => httpPort)
      return Registration.layer({ service: options.service, host: config.advertiseHost, port })
    })
  )
  const ports = Layer.effect(
    BoundPorts,
    Effect.gen(function*() {
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
