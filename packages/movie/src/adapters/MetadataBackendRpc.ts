/** MetadataBackend over Effect RPC to instances found through discovery. */
import { MetadataRpcs } from "@movieapp/contracts/Metadata"
import * as ServiceClient from "@movieapp/platform/ServiceClient"
import { Effect, Layer } from "effect"
import { MetadataBackend } from "../ports/MetadataBackend.js"

export const layer = (options: Omit<ServiceClient.Options, "service">) =>
  Layer.scoped(
    MetadataBackend,
    Effect.gen(function*() {
      const metadata = yield* ServiceClient.make(MetadataRpcs, { ...options, service: "metadata" })
      return MetadataBackend.of({
        get: (movieId) => metadata.call("MetadataService.GetMetadata", (client) => client.GetMetadata({ movieId })),
        getMany: (movieIds) =>
          metadata.call("MetadataService.GetMetadataBatch", (client) => client.GetMetadataBatch({ movieIds })),
        listByTitle: (limit, after) =>
          metadata.call(
            "MetadataService.ListMetadataByTitle",
            (client) => client.ListMetadataByTitle(after === undefined ? { limit } : { limit, after })
          )
      })
    })
  )
