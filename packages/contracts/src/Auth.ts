/**
 * Who is calling, and the errors that say no. Writes carry a bearer token (a JWT
 * signed with an asymmetric key); its `sub` is the caller and its `scope` claim
 * what the caller may do beyond rating as itself. Each error maps to exactly one
 * gRPC status and one HTTP status at the edges.
 */
import { RpcMiddleware } from "@effect/rpc"
import { Context, Effect, Schema } from "effect"
import { ServiceUnavailable } from "./Errors.js"

/** The scope a token needs to write movie metadata. */
export const METADATA_WRITE_SCOPE = "metadata:write"

/** The scope a token needs to submit rating events of any user (what the ingestor does). */
export const RATINGS_INGEST_SCOPE = "ratings:ingest"

/**
 * No valid credentials: no token, or one that is malformed, expired, not yet
 * valid, from another issuer or audience, or not signed by a trusted key. The
 * reason is one fixed sentence: it never holds the token, a claim's value or a
 * key.
 */
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()(
  "Unauthenticated",
  { reason: Schema.String }
) {
  override get message() {
    return `unauthenticated: ${this.reason}`
  }
}

/** Valid credentials that do not allow this call: another user's rating, a missing scope. */
export class PermissionDenied extends Schema.TaggedError<PermissionDenied>()(
  "PermissionDenied",
  { reason: Schema.String }
) {
  override get message() {
    return `permission denied: ${this.reason}`
  }
}

/** The caller went over its rate limit; `retryAfterMillis` says when a call will be accepted again. */
export class RateLimited extends Schema.TaggedError<RateLimited>()(
  "RateLimited",
  { retryAfterMillis: Schema.NonNegativeInt }
) {
  override get message() {
    return `rate limit exceeded: retry in ${(this.retryAfterMillis / 1000).toFixed(3)} s`
  }
}

/** The authenticated caller of the current call. */
export interface Caller {
  /** The token's `sub`. */
  readonly subject: string
  /** The token's `scope` claim, split on spaces. */
  readonly scopes: ReadonlySet<string>
  /**
   * True only when authentication is switched off (`AUTH=disabled`): then every
   * caller may do everything, and `subject` names nobody.
   */
  readonly unrestricted: boolean
}

/** The caller of a write, provided by the edge once its token is verified. */
export class Principal extends Context.Tag("@movieapp/contracts/Auth/Principal")<Principal, Caller>() {}

/**
 * Effect RPC middleware of every write: the server verifies the bearer token in
 * the call's `authorization` header and provides the {@link Principal}; a client
 * sends the header with the call (`{ headers: { authorization: "Bearer ..." } }`).
 */
export class Authentication extends RpcMiddleware.Tag<Authentication>()("@movieapp/contracts/Auth/Authentication", {
  provides: Principal,
  failure: Schema.Union(Unauthenticated, ServiceUnavailable, RateLimited)
}) {}

/** Succeeds when `caller` is `userId` (a user rates and deletes only their own ratings). */
export const requireSubject = (caller: Caller, userId: string): Effect.Effect<void, PermissionDenied> =>
  caller.unrestricted || caller.subject === userId
    ? Effect.void
    : Effect.fail(new PermissionDenied({ reason: "the rating's user must be the token's subject" }))

/** Succeeds when `caller` holds `scope`. */
export const requireScope = (caller: Caller, scope: string): Effect.Effect<void, PermissionDenied> =>
  caller.unrestricted || caller.scopes.has(scope)
    ? Effect.void
    : Effect.fail(new PermissionDenied({ reason: `the token lacks the scope ${scope}` }))
