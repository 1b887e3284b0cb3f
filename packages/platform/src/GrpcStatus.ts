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
}> {
  override get message() {
    return `${Code[this.code]}: ${this.details}`
  }
}

export const invalidArgument = (details: string) => new GrpcStatusError({ code: Code.INVALID_ARGUMENT, details })
export const notFound = (details: string) => new GrpcStatusError({ code: Code.NOT_FOUND, details })
export const unavailable = (details: string) => new GrpcStatusError({ code: Code.UNAVAILABLE, details })
export const deadlineExceeded = (details: string) => new GrpcStatusError({ code: Code.DEADLINE_EXCEEDED, details })
