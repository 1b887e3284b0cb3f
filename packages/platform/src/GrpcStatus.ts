/**
 * The one failure type a gRPC handler may fail with. Each service's edge maps its
 * typed errors to one of these, so the mapping is explicit and exhaustive there.
 */
import { status as Code } from "@grpc/grpc-js"
import { Data } from "effect"

export { Code }

export class GrpcStatusError extends Data.TaggedError("GrpcStatusError")<{
  readonly code: Code
  readonly details: string
  /** Trailing metadata sent with the status (`grpc-retry-pushback-ms`). */
  readonly trailers?: Readonly<Record<string, string>>
}> {
  override get message() {
    return `${Code[this.code]}: ${this.details}`
  }
}

export const invalidArgument = (details: string) => new GrpcStatusError({ code: Code.INVALID_ARGUMENT, details })
export const notFound = (details: string) => new GrpcStatusError({ code: Code.NOT_FOUND, details })
export const unavailable = (details: string) => new GrpcStatusError({ code: Code.UNAVAILABLE, details })
export const deadlineExceeded = (details: string) => new GrpcStatusError({ code: Code.DEADLINE_EXCEEDED, details })
export const unauthenticated = (details: string) => new GrpcStatusError({ code: Code.UNAUTHENTICATED, details })
export const permissionDenied = (details: string) => new GrpcStatusError({ code: Code.PERMISSION_DENIED, details })

/**
 * RESOURCE_EXHAUSTED for a caller over its rate limit, telling when to retry in
 * `grpc-retry-pushback-ms`, the trailer gRPC's own retry policy reads (gRFC A6).
 */
export const rateLimited = (details: string, retryAfterMillis: number) =>
  new GrpcStatusError({
    code: Code.RESOURCE_EXHAUSTED,
    details,
    trailers: { "grpc-retry-pushback-ms": String(retryAfterMillis) }
  })
