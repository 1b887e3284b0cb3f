/**
 * The running metadata service: gRPC, HTTP JSON and Effect RPC over one
 * application service, registered in discovery. Adapters (repository, discovery)
 * are chosen by the caller: `main.ts` in production, the dev stack and tests.
 */
import { HttpServer } from "@effect/platform"
import type { ServerConfig } from "@movieapp/platform/Config"
import * as Http from "@movieapp/platform/Http"
import * as Registration from "@movieapp/platform/Registration"
import { Effect, Layer } from "effect"
import * as MetadataGrpc from "./edges/MetadataGrpc.js"
import * as MetadataHttp from "./edges/MetadataHttp.js"
import * as MetadataRpc from "./edges/MetadataRpc.js"
import * as MetadataService from "./MetadataService.js"

export const SERVICE_NAME = "metadata"

export const layer = (config: ServerConfig) => {
  const http = Http.serve(Layer.mergeAll(MetadataHttp.routes, MetadataRpc.routes), { host: config.host, port: config.httpPort })
  // Registered only once the RPC endpoint listens, and deregistered before it stops.
  const registration = Layer.unwrapEffect(
    Effect.map(HttpServer.HttpServer, (server) =>
      Registration.layer({ service: SERVICE_NAME, host: config.advertiseHost, port: Http.boundPort(server) }))
  ).pipe(Layer.provideMerge(http))
  return Layer.mergeAll(MetadataGrpc.layer(config), registration).pipe(Layer.provide(MetadataService.layer))
}
