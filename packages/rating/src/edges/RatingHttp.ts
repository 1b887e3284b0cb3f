/**
 * HTTP JSON edge: `GET /rating?id=&type=`, `PUT /rating` (JSON body) and
 * `DELETE /rating?id=&type=&userId=`. Field names follow the gRPC JSON mapping.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, HttpLayerRouter } from "@effect/platform"
import { InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Rating, RatingNotFound, RecordId, RecordType, UserId } from "@movieapp/contracts/Rating"
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

export class RatingHttpApi extends HttpApi.make("rating").add(
  HttpApiGroup.make("rating")
    .add(
      HttpApiEndpoint.get("get", "/rating")
        .setUrlParams(RecordParams)
        .addSuccess(AggregateResponse)
        .addError(ServiceUnavailable)
    )
    .add(
      HttpApiEndpoint.put("put", "/rating")
        .setPayload(Rating)
        .addSuccess(AggregateResponse)
        .addError(InvalidArgument)
        .addError(ServiceUnavailable)
    )
    .add(
      HttpApiEndpoint.del("delete", "/rating")
        .setUrlParams(Schema.Struct({ ...RecordParams.fields, userId: UserId }))
        .addSuccess(HttpApiSchema.NoContent)
        .addError(RatingNotFound)
        .addError(InvalidArgument)
        .addError(ServiceUnavailable)
    )
) {}

const handlers = HttpApiBuilder.group(RatingHttpApi, "rating", (handlers) =>
  Effect.gen(function* () {
    const ratings = yield* RatingService
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
        ratings.put(payload).pipe(Effect.zipRight(respond(payload.recordType, payload.recordId))))
      .handle("delete", ({ urlParams }) =>
        ratings.remove({ recordType: urlParams.type, recordId: urlParams.id, userId: urlParams.userId }))
  }))

export const routes = HttpLayerRouter.addHttpApi(RatingHttpApi, { openapiPath: "/openapi.json" }).pipe(
  Layer.provide(handlers)
)
