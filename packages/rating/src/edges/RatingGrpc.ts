/**
 * gRPC edge: movieapp.v1.RatingService and the original unpackaged RatingService.
 * They differ only in how "nobody rated this" is told: v1 answers a count of 0 and
 * no value; the original answers NOT_FOUND, as the original service did.
 */
import { type PermissionDenied, type RateLimited, requireSubject, type Unauthenticated } from "@movieapp/contracts/Auth"
import type { InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Rating, RatingKey, type RatingNotFound, RecordKey, type UserId } from "@movieapp/contracts/Rating"
import * as Auth from "@movieapp/platform/Auth"
import * as GrpcServer from "@movieapp/platform/GrpcServer"
import * as GrpcStatus from "@movieapp/platform/GrpcStatus"
import * as Validation from "@movieapp/platform/Validation"
import * as legacy from "@movieapp/proto/gen/legacy/movie"
import * as v1 from "@movieapp/proto/gen/movieapp/v1/rating"
import { Effect, Match, Option, Schema } from "effect"
import { RatingService } from "../RatingService.js"

// Wire field names differ from the domain's (rating_value vs value).
const PutRequest = Schema.Struct({ ...RatingKey.fields, ratingValue: Rating.fields.value })

export const toStatus = Match.type<
  RatingNotFound | InvalidArgument | ServiceUnavailable | Unauthenticated | PermissionDenied | RateLimited
>().pipe(
  Match.tagsExhaustive({
    RatingNotFound: (error) => GrpcStatus.notFound(error.message),
    InvalidArgument: (error) => GrpcStatus.invalidArgument(error.message),
    ServiceUnavailable: (error) => GrpcStatus.unavailable(error.message),
    Unauthenticated: (error) => GrpcStatus.unauthenticated(error.message),
    PermissionDenied: (error) => GrpcStatus.permissionDenied(error.message),
    RateLimited: (error) => GrpcStatus.rateLimited(error.message, error.retryAfterMillis)
  })
)

/** The versioned and the original RatingService, over the same handlers. */
export const services = Effect.gen(function*() {
  const decodeRecordKey = Validation.decode(RecordKey)
  const decodePutRequest = Validation.decode(PutRequest)
  const decodeRatingKey = Validation.decode(RatingKey)
  const ratings = yield* RatingService
  const access = yield* Auth.WriteAccess
  // Who calls is settled before the request is read: a stranger learns nothing of what is valid.
  const byItsUser = <A extends { readonly userId: UserId }>(
    call: GrpcServer.ServerCall,
    request: Effect.Effect<A, InvalidArgument>
  ) =>
    Effect.flatMap(
      Auth.grpcCaller(access, call),
      (caller) => Effect.tap(request, ({ userId }) => requireSubject(caller, userId))
    )
  const aggregate = (request: unknown) =>
    decodeRecordKey(request).pipe(
      Effect.flatMap((key) => Effect.map(ratings.aggregate(key), (aggregate) => ({ key, aggregate })))
    )
  const putRating = (request: unknown, call: GrpcServer.ServerCall) =>
    byItsUser(call, decodePutRequest(request)).pipe(
      Effect.flatMap(({ ratingValue, ...key }) => ratings.put({ ...key, value: ratingValue })),
      Effect.as({}),
      Effect.mapError(toStatus)
    )
  return [
    GrpcServer.service(v1.RatingServiceService, {
      getAggregatedRating: (request) =>
        aggregate(request).pipe(
          Effect.map(({ aggregate }) => ({
            ratingValue: Option.getOrUndefined(aggregate.average),
            ratingsCount: aggregate.count
          })),
          Effect.mapError(toStatus)
        ),
      putRating,
      deleteRating: (request, call) =>
        byItsUser(call, decodeRatingKey(request)).pipe(
          Effect.flatMap(ratings.remove),
          Effect.as({}),
          Effect.mapError(toStatus)
        )
    }),
    GrpcServer.service(legacy.RatingServiceService, {
      getAggregatedRating: (request) =>
        aggregate(request).pipe(
          Effect.mapError(toStatus),
          Effect.flatMap(({ aggregate, key }) =>
            Option.match(aggregate.average, {
              onNone: () => Effect.fail(GrpcStatus.notFound(`no ratings for ${key.recordType} ${key.recordId}`)),
              onSome: (ratingValue) => Effect.succeed({ ratingValue })
            })
          )
        ),
      putRating
    })
  ]
})
