/** gRPC edge: movieapp.v1.MetadataService and the original unpackaged MetadataService. */
import {
  METADATA_WRITE_SCOPE,
  type PermissionDenied,
  type RateLimited,
  requireScope,
  type Unauthenticated
} from "@movieapp/contracts/Auth"
import { InvalidArgument, type ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Metadata, type MetadataNotFound, MovieId } from "@movieapp/contracts/Metadata"
import * as Auth from "@movieapp/platform/Auth"
import * as GrpcServer from "@movieapp/platform/GrpcServer"
import * as GrpcStatus from "@movieapp/platform/GrpcStatus"
import * as Validation from "@movieapp/platform/Validation"
import * as legacy from "@movieapp/proto/gen/legacy/movie"
import * as v1 from "@movieapp/proto/gen/movieapp/v1/metadata"
import { Effect, Match, Schema } from "effect"
import { MetadataService } from "../MetadataService.js"

const GetRequest = Schema.Struct({ movieId: MovieId })
const PutRequest = Schema.Struct({ metadata: Metadata })

export const toStatus = Match.type<
  MetadataNotFound | InvalidArgument | ServiceUnavailable | Unauthenticated | PermissionDenied | RateLimited
>().pipe(
  Match.tagsExhaustive({
    MetadataNotFound: (error) => GrpcStatus.notFound(error.message),
    InvalidArgument: (error) => GrpcStatus.invalidArgument(error.message),
    ServiceUnavailable: (error) => GrpcStatus.unavailable(error.message),
    Unauthenticated: (error) => GrpcStatus.unauthenticated(error.message),
    PermissionDenied: (error) => GrpcStatus.permissionDenied(error.message),
    RateLimited: (error) => GrpcStatus.rateLimited(error.message, error.retryAfterMillis)
  })
)

/** The versioned and the original MetadataService, over the same handlers. */
export const services = Effect.gen(function*() {
  const decodeGetRequest = Validation.decode(GetRequest)
  const decodePutRequest = Validation.decode(PutRequest)
  const metadata = yield* MetadataService
  const access = yield* Auth.WriteAccess
  const getMetadata = (request: unknown) =>
    decodeGetRequest(request).pipe(
      Effect.flatMap(({ movieId }) => metadata.get(movieId)),
      Effect.map((found) => ({ metadata: found })),
      Effect.mapError(toStatus)
    )
  const putMetadata = (request: { readonly metadata?: unknown }, call: GrpcServer.ServerCall) =>
    Auth.grpcCaller(access, call).pipe(
      Effect.flatMap((caller) => requireScope(caller, METADATA_WRITE_SCOPE)),
      Effect.zipRight(
        request.metadata === undefined
          ? Effect.fail(new InvalidArgument({ field: "metadata", reason: "is required" }))
          : decodePutRequest(request)
      ),
      Effect.flatMap((decoded) => metadata.put(decoded.metadata)),
      Effect.as({}),
      Effect.mapError(toStatus)
    )
  // The two APIs carry the same fields under different names: one set of handlers serves both.
  return [
    GrpcServer.service(v1.MetadataServiceService, { getMetadata, putMetadata }),
    GrpcServer.service(legacy.MetadataServiceService, { getMetadata, putMetadata })
  ]
})
