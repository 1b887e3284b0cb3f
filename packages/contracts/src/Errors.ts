/**
 * Errors that cross a wire and are shared by every service. Each maps to exactly
 * one gRPC status and one HTTP status at the edges (the HTTP ones: platform's Http).
 */
import { Array, ParseResult, Schema, String } from "effect"

/** A request field failed validation. `field` uses the wire (snake_case) name. */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>()(
  "InvalidArgument",
  { field: Schema.String, reason: Schema.String }
) {
  override get message() {
    return this.field === "" ? this.reason : `${this.field}: ${this.reason}`
  }

  /**
   * The first issue of a failed decode, named by its field path. By default paths
   * are rendered snake_case, as gRPC and proto-JSON clients spell them; input
   * written in camelCase (JSON events) keeps its own spelling with `"asWritten"`.
   */
  static fromParseError(
    error: ParseResult.ParseError,
    naming: "snake_case" | "asWritten" = "snake_case"
  ): InvalidArgument {
    const issue = Array.head(ParseResult.ArrayFormatter.formatErrorSync(error))
    if (issue._tag === "None") return new InvalidArgument({ field: "", reason: error.message })
    const name = (segment: PropertyKey) =>
      naming === "snake_case" ? String.camelToSnake(globalThis.String(segment)) : globalThis.String(segment)
    return new InvalidArgument({ field: issue.value.path.map(name).join("."), reason: issue.value.message })
  }
}

/** A dependency (database, broker, another service) cannot be reached right now; retrying may help. */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()(
  "ServiceUnavailable",
  { service: Schema.String, reason: Schema.String }
) {
  override get message() {
    return `${this.service} unavailable: ${this.reason}`
  }
}

/** The caller's deadline passed before the work finished. */
export class DeadlineExceeded extends Schema.TaggedError<DeadlineExceeded>()(
  "DeadlineExceeded",
  { operation: Schema.String }
) {
  override get message() {
    return `deadline exceeded during ${this.operation}`
  }
}
