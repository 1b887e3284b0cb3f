/** Effect RPC edge: what the gateway calls; PutMetadata verified by the Authentication middleware. */
import { METADATA_WRITE_SCOPE, Principal, requireScope } from "@movieapp/contracts/Auth"
import { MetadataRpcs } from "@movieapp/contracts/Metadata"
import * as Auth from "@movieapp/platform/Auth"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import { Effect, Layer, Option } from "effect"
import { MetadataService } from "../MetadataService.js"

const handlers = MetadataRpcs.toLayer(
  Effect.gen(function*() {
    const metadata = yield* MetadataService
    return {
      GetMetadata: ({ movieId }) => metadata.get(movieId),
      GetMetadataBatch: ({ movieIds }) => metadata.getMany(movieIds),
      ListMetadataByTitle: ({ after, limit }) => metadata.listByTitle(limit, Option.fromNullable(after)),
      PutMetadata: ({ metadata: input }) =>
        Effect.flatMap(Principal, (caller) => requireScope(caller, METADATA_WRITE_SCOPE)).pipe(
          Effect.zipRight(metadata.put(input))
        )
    }
  })
)

export const server = (options: RpcTransport.ServerOptions) =>
  RpcTransport.serve(MetadataRpcs, options).pipe(Layer.provide([handlers, Auth.rpcAuthentication]))
