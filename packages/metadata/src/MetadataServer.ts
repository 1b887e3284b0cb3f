/**
 * The running metadata service: gRPC, HTTP JSON and Effect RPC over one
 * application service. Adapters (repository, discovery) are chosen by the
 * caller: `main.ts` in production, the dev stack and tests.
 */
import type { ServerConfig } from "@movieapp/platform/Config"
import * as ServerHost from "@movieapp/platform/ServerHost"
import * as Tls from "@movieapp/platform/Tls"
import { descriptorSet } from "@movieapp/proto/gen/descriptorSet"
import { Context, Effect, Layer } from "effect"
import * as MetadataGrpc from "./edges/MetadataGrpc.js"
import * as MetadataHttp from "./edges/MetadataHttp.js"
import * as MetadataRpc from "./edges/MetadataRpc.js"
import * as MetadataService from "./MetadataService.js"

export const SERVICE_NAME = "metadata"

/** Where this metadata instance listens. */
export class Ports
  extends Context.Tag("@movieapp/metadata/MetadataServer/Ports")<Ports, ServerHost.BoundPorts["Type"]>()
{}

export const layer = (config: ServerConfig) =>
  Layer.effect(Ports, ServerHost.BoundPorts).pipe(
    Layer.provide(Layer.unwrapEffect(Effect.map(MetadataGrpc.services, (grpcServices) =>
      ServerHost.layer({
        service: SERVICE_NAME,
        version: ServerHost.packageVersion(import.meta.url),
        config,
        grpcServices,
        descriptorSet,
        httpRoutes: MetadataHttp.routes,
        rpcServer: MetadataRpc.server
      })))),
    Layer.provide(Tls.layer(config.tls)),
    Layer.provide(MetadataService.layer)
  )
