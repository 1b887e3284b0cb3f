/**
 * Authentication of writes, once for every edge. A write carries a bearer token
 * (`authorization: Bearer <JWT>`) that a {@link TokenVerifier} checks (signature
 * by a trusted asymmetric key, issuer, audience, expiry); the caller it names is
 * then held to a per-caller rate limit. Reads are never verified, so they cost
 * nothing more. Tokens and keys never appear in errors or logs: a refusal
 * carries one fixed sentence.
 *
 * Each edge verifies for itself (gRPC metadata, HTTP header, Effect RPC header)
 * rather than trusting a gateway, so a backend reached directly is as closed as
 * one reached through the gateway; the gateway serves no writes.
 */
import { HttpApiMiddleware, HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Authentication, type Caller, Principal, RateLimited, Unauthenticated } from "@movieapp/contracts/Auth"
import type { ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Config, ConfigError, Context, Duration, Effect, Either, Layer, Option, Schema } from "effect"
import type { ServerCall } from "./GrpcServer.js"
import * as Http from "./Http.js"
import * as RateLimit from "./RateLimit.js"

/** The port: checks a bearer token and says who it names. */
export class TokenVerifier extends Context.Tag("@movieapp/platform/Auth/TokenVerifier")<TokenVerifier, {
  /** The caller `token` names, or why it names nobody (never echoing the token). */
  readonly verify: (token: string) => Effect.Effect<Caller, Unauthenticated | ServiceUnavailable>
}>() {}

/** Where the keys that sign tokens are published. */
export type KeySource =
  | { readonly _tag: "PublicKeyFile"; readonly path: string }
  | { readonly _tag: "Jwks"; readonly url: URL }

/** What a verifier checks besides the signature. */
export interface VerifierConfig {
  readonly key: KeySource
  readonly issuer: string
  readonly audience: string
  /** How far a token's `exp` and `nbf` may be off the clock and still pass. */
  readonly clockTolerance: Duration.Duration
}

/** Writes authenticated with a verifier, or (`AUTH=disabled`, explicitly) open to anyone. */
export type AuthConfig = { readonly _tag: "Disabled" } | ({ readonly _tag: "Enabled" } & VerifierConfig)

const MISSING = "writes need a key to verify tokens: set AUTH_PUBLIC_KEY_FILE (a PEM public key) or " +
  "AUTH_JWKS_URL, with AUTH_ISSUER and AUTH_AUDIENCE; or set AUTH=disabled to accept writes from anyone"

/**
 * `AUTH` (`enabled`, the default, or `disabled`), `AUTH_PUBLIC_KEY_FILE` or
 * `AUTH_JWKS_URL`, `AUTH_ISSUER`, `AUTH_AUDIENCE`, `AUTH_CLOCK_TOLERANCE` (30
 * seconds). A service that takes writes does not start without a key unless
 * `AUTH=disabled` says so.
 */
export const config: Config.Config<AuthConfig> = Config.all({
  mode: Config.literal("enabled", "disabled")("auth").pipe(Config.withDefault("enabled" as const)),
  publicKeyFile: Config.option(Config.nonEmptyString("publicKeyFile").pipe(Config.nested("auth"))),
  jwksUrl: Config.option(Config.url("jwksUrl").pipe(Config.nested("auth"))),
  issuer: Config.option(Config.nonEmptyString("issuer").pipe(Config.nested("auth"))),
  audience: Config.option(Config.nonEmptyString("audience").pipe(Config.nested("auth"))),
  clockTolerance: Config.duration("clockTolerance").pipe(Config.nested("auth"), Config.withDefault("30 seconds"))
}).pipe(Config.mapOrFail((settings): Either.Either<AuthConfig, ConfigError.ConfigError> => {
  if (settings.mode === "disabled") return Either.right({ _tag: "Disabled" })
  const { audience, issuer, jwksUrl, publicKeyFile } = settings
  if (publicKeyFile._tag === "Some" && jwksUrl._tag === "Some") {
    return Either.left(
      ConfigError.InvalidData(["auth"], "set one of AUTH_PUBLIC_KEY_FILE and AUTH_JWKS_URL, not both")
    )
  }
  const key = Option.orElse(
    Option.map(publicKeyFile, (path): KeySource => ({ _tag: "PublicKeyFile", path })),
    () => Option.map(jwksUrl, (url): KeySource => ({ _tag: "Jwks", url }))
  )
  if (Option.isNone(key)) return Either.left(ConfigError.InvalidData(["auth"], MISSING))
  if (issuer._tag === "None" || audience._tag === "None") {
    return Either.left(
      ConfigError.InvalidData(["auth"], "AUTH_ISSUER and AUTH_AUDIENCE are required to verify tokens")
    )
  }
  return Either.right({
    _tag: "Enabled",
    key: key.value,
    issuer: issuer.value,
    audience: audience.value,
    clockTolerance: Duration.decode(settings.clockTolerance)
  })
}))

/** Admits writes: the caller a request's credentials name, within its rate limit. */
export class WriteAccess extends Context.Tag("@movieapp/platform/Auth/WriteAccess")<WriteAccess, {
  /**
   * The caller named by `authorization` (the header's value, `Bearer <token>`),
   * once within its rate limit; `peer` keys the limit when no token names a
   * caller (authentication off, or a missing or invalid token).
   */
  readonly admit: (
    authorization: string | undefined,
    peer: string | undefined
  ) => Effect.Effect<Caller, Unauthenticated | ServiceUnavailable | RateLimited>
}>() {}

const BEARER = /^bearer[ \t]+(\S+)[ \t]*$/i

const limited = (limiter: RateLimit.Limiter | undefined, key: string) => {
  if (limiter === undefined) return undefined
  const wait = limiter(key)
  return wait === 0 ? undefined : new RateLimited({ retryAfterMillis: wait })
}

/**
 * Writes need a token the {@link TokenVerifier} accepts; each subject has its own
 * rate limit. A request without a valid token has no subject, so its peer's
 * budget pays for it: guessing tokens, or a client stuck with an expired one,
 * is refused RESOURCE_EXHAUSTED once over the same limit, without touching the
 * budget of any caller whose token verifies.
 */
export const layer = (limit: RateLimit.RateLimitConfig): Layer.Layer<WriteAccess, never, TokenVerifier> =>
  Layer.effect(
    WriteAccess,
    Effect.map(TokenVerifier, (verifier) => {
      const limiter = RateLimit.make(limit, { limit: "writes" })
      const anonymous = RateLimit.make(limit, { limit: "unauthenticated" })
      const refuse = (peer: string | undefined, error: Unauthenticated) =>
        Effect.fail(limited(anonymous, peer ?? "") ?? error)
      return WriteAccess.of({
        admit: (authorization, peer) => {
          if (authorization === undefined || authorization === "") {
            return refuse(peer, new Unauthenticated({ reason: "no bearer token (send authorization: Bearer <token>)" }))
          }
          const bearer = BEARER.exec(authorization)
          if (bearer === null) {
            return refuse(peer, new Unauthenticated({ reason: "the authorization header is not a bearer token" }))
          }
          return verifier.verify(bearer[1]!).pipe(
            Effect.catchTag("Unauthenticated", (error) => refuse(peer, error)),
            Effect.flatMap((caller) => {
              const refused = limited(limiter, caller.subject)
              return refused === undefined ? Effect.succeed(caller) : Effect.fail(refused)
            })
          )
        }
      })
    })
  )

const anyone: Caller = { subject: "", scopes: new Set(), unrestricted: true }

/**
 * `AUTH=disabled`: writes from anyone, with a warning at start. Rate limits then
 * key on the peer, the only thing known of a caller.
 */
export const layerDisabled = (limit: RateLimit.RateLimitConfig): Layer.Layer<WriteAccess> =>
  Layer.effect(
    WriteAccess,
    Effect.gen(function*() {
      yield* Effect.logWarning(
        "AUTH=disabled: writes are accepted from anyone, without a token; never run so where others can reach it"
      )
      const limiter = RateLimit.make(limit, { limit: "writes" })
      return WriteAccess.of({
        admit: (_, peer) => {
          const refused = limited(limiter, peer ?? "")
          return refused === undefined ? Effect.succeed(anyone) : Effect.fail(refused)
        }
      })
    })
  )

/** The caller of a gRPC write, from its `authorization` metadata. */
export const grpcCaller = (access: WriteAccess["Type"], call: ServerCall) => {
  const [authorization] = call.metadata.get("authorization")
  return access.admit(
    authorization === undefined ? undefined : String(authorization),
    RateLimit.fromGrpcPeer(call.peer)
  )
}

/**
 * The caller of an HTTP write, from its `authorization` header. A refusal also
 * gets its header: `WWW-Authenticate` on 401 (RFC 6750), `Retry-After` on 429.
 * Its body is never read: Node answers `Connection: close` and drops the rest.
 */
const httpCaller = (access: WriteAccess["Type"]) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const authorization = request.headers.authorization
    return access.admit(
      authorization,
      RateLimit.fromRemoteAddress(request.remoteAddress._tag === "Some" ? request.remoteAddress.value : "")
    ).pipe(
      Effect.tapError((error) => {
        if (error._tag === "Unauthenticated") {
          const challenge = authorization === undefined
            ? `Bearer realm="movieapp"`
            : `Bearer realm="movieapp", error="invalid_token"`
          return HttpApp.appendPreResponseHandler((_, response) =>
            Effect.succeed(HttpServerResponse.setHeader(response, "www-authenticate", challenge))
          )
        }
        if (error._tag === "RateLimited") {
          const seconds = String(Math.max(1, Math.ceil(error.retryAfterMillis / 1000)))
          return HttpApp.appendPreResponseHandler((_, response) =>
            Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", seconds))
          )
        }
        return Effect.void
      })
    )
  })

/**
 * HttpApi middleware of every write: provides the {@link Principal} named by the
 * request's `authorization` header. HttpApiBuilder runs an endpoint's middleware
 * before it reads the request's body and parameters, so, as at the gRPC edges, a
 * stranger is refused before learning anything of what is valid.
 */
export class HttpAuthentication extends HttpApiMiddleware.Tag<HttpAuthentication>()(
  "@movieapp/platform/Auth/HttpAuthentication",
  {
    provides: Principal,
    failure: Schema.Union(Http.UnauthenticatedError, Http.RateLimitedError, Http.ServiceUnavailableError)
  }
) {}

/** The server side of {@link HttpAuthentication}. */
export const httpAuthentication: Layer.Layer<HttpAuthentication, never, WriteAccess> = Layer.effect(
  HttpAuthentication,
  Effect.map(WriteAccess, httpCaller)
)

/**
 * The server side of the {@link Authentication} middleware of Effect RPC
 * writes: the caller named by the call's `authorization` header.
 */
export const rpcAuthentication: Layer.Layer<Authentication, never, WriteAccess> = Layer.effect(
  Authentication,
  Effect.map(
    WriteAccess,
    (access) =>
      Authentication.of(({ clientId, headers }) => access.admit(headers.authorization, `rpc-client:${clientId}`))
  )
)
