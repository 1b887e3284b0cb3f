/**
 * HTTP JSON edge: `GET /rating?id=&type=`, `PUT /rating` (JSON body) and
 * `DELETE /rating?id=&type=&userId=`, the writes with a bearer token whose
 * subject is the rating's user. Field names follow the gRPC JSON mapping;
 * errors are Http.ErrorBody.
 */
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiSchema,
  HttpLayerRouter,
  OpenApi
} from "@effect/platform"
import { Principal, requireSubject } from "@movieapp/contracts/Auth"
import { Rating, RatingNotFound, RecordId, RecordType, UserId } from "@movieapp/contracts/Rating"
import * as Auth from "@movieapp/platform/Auth"
import { Code } from "@movieapp/platform/GrpcStatus"
import * as Http from "@movieapp/platform/Http"
import { Effect, Layer, Option, Schema } from "effect"
import { RatingService } from "../RatingService.js"

export const AggregateResponse = Schema.Struct({
  recordType: RecordType,
  recordId: RecordId,
  /** Absent when nobody rated the record. */
  ratingValue: Schema.optional(Schema.Number),
  ratingsCount: Schema.NonNegativeInt
})

const RecordParams = Schema.Struct({ id: RecordId, type: RecordType })

const NotFound = Http.apiError(RatingNotFound, { status: 404, code: Code.NOT_FOUND })

export class RatingHttpApi extends HttpApi.make("rating").annotate(OpenApi.Transform, Http.withBearerScheme).add(
  HttpApiGroup.make("rating")
    .add(
      HttpApiEndpoint.get("get", "/rating")
        .setUrlParams(RecordParams)
        .addSuccess(AggregateResponse)
        .addError(Http.ServiceUnavailableError)
    )
    .add(
      HttpApiEndpoint.put("put", "/rating")
        .annotate(OpenApi.Override, Http.bearerRequired)
        .middleware(Auth.HttpAuthentication)
        .setPayload(Rating)
        .addSuccess(AggregateResponse)
        .addError(Http.InvalidArgumentError)
        .addError(Http.PermissionDeniedError)
        .addError(Http.ServiceUnavailableError)
    )
    .add(
      HttpApiEndpoint.del("delete", "/rating")
        .annotate(OpenApi.Override, Http.bearerRequired)
        .middleware(Auth.HttpAuthentication)
        .setUrlParams(Schema.Struct({ ...RecordParams.fields, userId: UserId }))
        .addSuccess(HttpApiSchema.NoContent)
        .addError(NotFound)
        .addError(Http.InvalidArgumentError)
        .addError(Http.PermissionDeniedError)
        .addError(Http.ServiceUnavailableError)
    )
) {}

const handlers = HttpApiBuilder.group(RatingHttpApi, "rating", (handlers) =>
  Effect.gen(function*() {
    const ratings = yield* RatingService
    const byUser = (userId: UserId) => Effect.flatMap(Principal, (caller) => requireSubject(caller, userId))
    const respond = (recordType: RecordType, recordId: RecordId) =>
      Effect.map(ratings.aggregate({ recordType, recordId }), (aggregate) => ({
        recordType,
        recordId,
        ratingsCount: aggregate.count,
        ...Option.match(aggregate.average, { onNone: () => ({}), onSome: (ratingValue) => ({ ratingValue }) })
      }))
    return handlers
      .handle("get", ({ urlParams }) => respond(urlParams.type, urlParams.id))
      .handle("put", ({ payload }) =>
        byUser(payload.userId).pipe(
          Effect.zipRight(ratings.put(payload)),
          Effect.zipRight(respond(payload.recordType, payload.recordId))
        ))
      .handle("delete", ({ urlParams }) =>
        byUser(urlParams.userId).pipe(
          Effect.zipRight(
            ratings.remove({ recordType: urlParams.type, recordId: urlParams.id, userId: urlParams.userId })
          )
        ))
  }))

export const routes = HttpLayerRouter.addHttpApi(RatingHttpApi, { openapiPath: "/openapi.json" }).pipe(
  Layer.provide(handlers),
  Layer.provide(Auth.httpAuthentication)
)
