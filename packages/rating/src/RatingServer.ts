/**
 * The running rating service: gRPC, HTTP JSON and Effect RPC over one application
 * service, plus the ingester draining the event source. Adapters (repository,
 * event source, discovery) are chosen by the caller.
 */
import type { ServerConfig } from "@movieapp/platform/Config"
import * as ServerHost from "@movieapp/platform/ServerHost"
import * as Tls from "@movieapp/platform/Tls"
import { descriptorSet } from "@movieapp/proto/gen/descriptorSet"
import { Context, Effect, Layer } from "effect"
import * as RatingGrpc from "./edges/RatingGrpc.js"
import * as RatingHttp from "./edges/RatingHttp.js"
import * as RatingRpc from "./edges/RatingRpc.js"
import * as Ingester from "./Ingester.js"
import * as RatingService from "./RatingService.js"

export const SERVICE_NAME = "rating"

/** Where this rating instance listens. */
export class Ports extends Context.Tag("@movieapp/rating/RatingServer/Ports")<Ports, ServerHost.BoundPorts["Type"]>() {}

export const layer = (config: ServerConfig) =>
  Layer.effect(Ports, ServerHost.BoundPorts).pipe(
    Layer.provide(Layer.unwrapEffect(Effect.map(RatingGrpc.services, (grpcServices) =>
      ServerHost.layer({
        service: SERVICE_NAME,
        version: ServerHost.packageVersion(import.meta.url),
        config,
        grpcServices,
        descriptorSet,
        httpRoutes: RatingHttp.routes,
        rpcServer: RatingRpc.server
      })))),
    Layer.provide(Tls.layer(config.tls)),
    Layer.provide(RatingService.layer),
    // The servers stop (draining in-flight submissions) before the ingester does.
    Layer.provide(Ingester.layer)
  )
