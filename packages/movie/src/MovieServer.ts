/**
 * The running gateway: gRPC and HTTP JSON over one application service whose
 * backends are reached over Effect RPC. Discovery is chosen by the caller.
 */
import type { ServerConfig } from "@movieapp/platform/Config"
import type { RateLimitConfig } from "@movieapp/platform/RateLimit"
import * as ServerHost from "@movieapp/platform/ServerHost"
import * as Tls from "@movieapp/platform/Tls"
import { descriptorSet } from "@movieapp/proto/gen/descriptorSet"
import { Context, Duration, Effect, Layer } from "effect"
import * as MetadataBackendRpc from "./adapters/MetadataBackendRpc.js"
import * as RatingBackendRpc from "./adapters/RatingBackendRpc.js"
import * as MovieGrpc from "./edges/MovieGrpc.js"
import * as MovieHttp from "./edges/MovieHttp.js"
import type { BackendsConfig } from "./MovieConfig.js"
import * as MovieService from "./MovieService.js"

export const SERVICE_NAME = "movie"

/** Where this gateway instance listens. */
export class Ports extends Context.Tag("@movieapp/movie/MovieServer/Ports")<Ports, ServerHost.BoundPorts["Type"]>() {}

export const layer = (
  config: {
    readonly server: ServerConfig
    readonly backends: BackendsConfig
    /** Per peer address, on every gRPC call and HTTP request; none when absent. */
    readonly rateLimit?: RateLimitConfig | undefined
  }
) =>
  Layer.effect(Ports, ServerHost.BoundPorts).pipe(
    Layer.provide(Layer.unwrapEffect(Effect.map(MovieGrpc.services, (grpcServices) =>
      ServerHost.layer({
        service: SERVICE_NAME,
        version: ServerHost.packageVersion(import.meta.url),
        config: config.server,
        grpcServices,
        descriptorSet,
        httpRoutes: MovieHttp.routes,
        // A call's backend work, retries included, ends by then (see ServiceClient).
        callTimeout: Duration.decode(config.backends.timeout),
        rateLimit: config.rateLimit
      })))),
    Layer.provide(MovieService.layer),
    Layer.provide([MetadataBackendRpc.layer(config.backends), RatingBackendRpc.layer(config.backends)]),
    // One identity for the gateway's listeners and for its calls to the backends.
    Layer.provide(Tls.layer(config.server.tls))
  )
