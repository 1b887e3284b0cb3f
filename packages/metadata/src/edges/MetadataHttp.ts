/**
 * HTTP JSON edge: `GET /metadata?id=` and `PUT /metadata` (a bearer token with
 * the scope `metadata:write`), with an OpenAPI document; errors as Http.ErrorBody.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpLayerRouter, OpenApi } from "@effect/platform"
import { METADATA_WRITE_SCOPE, Principal, requireScope } from "@movieapp/contracts/Auth"
import { Metadata, MetadataNotFound, MovieId } from "@movieapp/contracts/Metadata"
import * as Auth from "@movieapp/platform/Auth"
import { Code } from "@movieapp/platform/GrpcStatus"
import * as Http from "@movieapp/platform/Http"
import { Effect, Layer, Schema } from "effect"
import { MetadataService } from "../MetadataService.js"

const NotFound = Http.apiError(MetadataNotFound, { status: 404, code: Code.NOT_FOUND })

export class MetadataHttpApi extends HttpApi.make("metadata").annotate(OpenApi.Transform, Http.withBearerScheme).add(
  HttpApiGroup.make("metadata")
    .add(
      HttpApiEndpoint.get("get", "/metadata")
        .setUrlParams(Schema.Struct({ id: MovieId }))
        .addSuccess(Metadata)
        .addError(NotFound)
        .addError(Http.ServiceUnavailableError)
    )
    .add(
      HttpApiEndpoint.put("put", "/metadata")
        .annotate(OpenApi.Override, Http.bearerRequired)
        .middleware(Auth.HttpAuthentication)
        .setPayload(Metadata)
        .addSuccess(Metadata)
        .addError(Http.PermissionDeniedError)
        .addError(Http.ServiceUnavailableError)
    )
) {}

const handlers = HttpApiBuilder.group(MetadataHttpApi, "metadata", (handlers) =>
  Effect.gen(function*() {
    const metadata = yield* MetadataService
    return handlers
      .handle("get", ({ urlParams }) => metadata.get(urlParams.id))
      .handle("put", ({ payload }) =>
        Principal.pipe(
          Effect.flatMap((caller) => requireScope(caller, METADATA_WRITE_SCOPE)),
          Effect.zipRight(metadata.put(payload)),
          Effect.as(payload)
        ))
  }))

export const routes = HttpLayerRouter.addHttpApi(MetadataHttpApi, { openapiPath: "/openapi.json" }).pipe(
  Layer.provide(handlers),
  Layer.provide(Auth.httpAuthentication)
)
