/**
 * The TokenVerifier on `jose`: JWTs signed ES256 (P-256) or RS256 only, never
 * a shared secret nor `none`, by a PEM public key read at start or by the keys
 * of a JWKS URL (jose's remote key set caches them, and fetches them again when
 * a token names a key id it does not hold, at most every 30 seconds). `iss`,
 * `aud`, `exp` and `sub` are required and checked; `nbf` when present.
 */
import { FileSystem } from "@effect/platform"
import { type Caller, Unauthenticated } from "@movieapp/contracts/Auth"
import { ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Data, Duration, Effect, Layer } from "effect"
import * as jose from "jose"
import { createPublicKey } from "node:crypto"
import * as Auth from "./Auth.js"
import type { RateLimitConfig } from "./RateLimit.js"

/** The public key file cannot be used: unreadable, or not an EC P-256 / RSA public key. */
export class KeyFileError extends Data.TaggedError("KeyFileError")<{ readonly path: string; readonly reason: string }> {
  constructor(props: { readonly path: string; readonly reason: string }) {
    super(props)
    this.stack = `${this.name}: ${this.message}`
  }

  override get message() {
    return `cannot use AUTH_PUBLIC_KEY_FILE ${this.path}: ${this.reason}`
  }
}

const ALGORITHMS = ["ES256", "RS256"]

/** Reads a PEM public key (a private key's public half is taken too) and the one algorithm it verifies. */
const readPublicKey = (path: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const fail = (reason: string) => new KeyFileError({ path, reason })
    const pem = yield* fs.readFileString(path).pipe(Effect.mapError((error) => fail(error.message)))
    const key = yield* Effect.try({
      try: () => createPublicKey(pem),
      // The parser's message may quote the file: only its kind is told.
      catch: () => fail("not a PEM public key")
    })
    const algorithm = key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1"
      ? "ES256"
      : key.asymmetricKeyType === "rsa" && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048
      ? "RS256"
      : undefined
    if (algorithm === undefined) return yield* fail("expected an EC P-256 (ES256) or RSA 2048+ (RS256) public key")
    const spki = key.export({ type: "spki", format: "pem" }).toString()
    return { key: yield* Effect.promise(() => jose.importSPKI(spki, algorithm)), algorithms: [algorithm] }
  })

/** Why a token was refused, in words that hold nothing of it. */
const refusal = (error: unknown): Unauthenticated | ServiceUnavailable => {
  const code = error instanceof jose.errors.JOSEError ? error.code : undefined
  const reason = (text: string) => new Unauthenticated({ reason: text })
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return reason("the token has expired")
    case "ERR_JWT_CLAIM_VALIDATION_FAILED": {
      const { claim, reason: why } = error as jose.errors.JWTClaimValidationFailed
      if (why === "missing") return reason(`the token has no ${claim} claim`)
      if (claim === "iss") return reason("the token's issuer is not accepted")
      if (claim === "aud") return reason("the token's audience is not accepted")
      if (claim === "nbf") return reason("the token is not valid yet")
      return reason(`the token's ${claim} claim is not valid`)
    }
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return reason("the token's algorithm is not accepted (ES256 or RS256 only)")
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return reason("the token is not signed by a trusted key")
    case "ERR_JWKS_TIMEOUT":
    case "ERR_JWKS_INVALID":
      return new ServiceUnavailable({ service: "auth", reason: "the key set cannot be fetched" })
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
      return reason("the token is malformed")
    default:
      // A failed fetch of the key set is a TypeError from fetch, not a JOSEError.
      return error instanceof jose.errors.JOSEError
        ? reason("the token is not valid")
        : new ServiceUnavailable({ service: "auth", reason: "the key set cannot be fetched" })
  }
}

const scopesOf = (scope: unknown): ReadonlySet<string> =>
  new Set(typeof scope === "string" ? scope.split(" ").filter((s) => s !== "") : [])

export interface Options {
  /** The least time between two fetches of a JWKS (30 seconds): a token naming an unknown key fetches it again only after this. */
  readonly jwksCooldown?: Duration.DurationInput
}

/** A verifier for `config`; with a key file, fails at start when the file is no usable key. */
export const make = (
  config: Auth.VerifierConfig,
  options: Options = {}
): Effect.Effect<Auth.TokenVerifier["Type"], KeyFileError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const { algorithms, key } = config.key._tag === "PublicKeyFile"
      ? yield* readPublicKey(config.key.path)
      : {
        key: jose.createRemoteJWKSet(config.key.url, {
          timeoutDuration: 5_000,
          cooldownDuration: Duration.toMillis(options.jwksCooldown ?? Duration.seconds(30))
        }),
        algorithms: ALGORITHMS
      }
    const verifyOptions: jose.JWTVerifyOptions = {
      algorithms,
      issuer: config.issuer,
      audience: config.audience,
      clockTolerance: Duration.toSeconds(config.clockTolerance),
      requiredClaims: ["sub", "exp", "iss", "aud"]
    }
    const verify = (token: string) =>
      typeof key === "function" ? jose.jwtVerify(token, key, verifyOptions) : jose.jwtVerify(token, key, verifyOptions)
    return Auth.TokenVerifier.of({
      verify: (token) =>
        Effect.tryPromise({ try: () => verify(token), catch: refusal }).pipe(
          Effect.flatMap(({ payload }): Effect.Effect<Caller, Unauthenticated> =>
            typeof payload.sub === "string" && payload.sub !== ""
              ? Effect.succeed({ subject: payload.sub, scopes: scopesOf(payload.scope), unrestricted: false })
              : Effect.fail(new Unauthenticated({ reason: "the token has no sub claim" }))
          )
        )
    })
  })

export const layer = (
  config: Auth.VerifierConfig,
  options?: Options
): Layer.Layer<Auth.TokenVerifier, KeyFileError, FileSystem.FileSystem> =>
  Layer.effect(Auth.TokenVerifier, make(config, options))

/**
 * Write access as a service's settings ask for it: tokens verified by this
 * adapter, or `AUTH=disabled` (writes from anyone, keyed by peer for the limit).
 */
export const layerWriteAccess = (
  auth: Auth.AuthConfig,
  limit: RateLimitConfig
): Layer.Layer<Auth.WriteAccess, KeyFileError, FileSystem.FileSystem> =>
  auth._tag === "Disabled" ? Auth.layerDisabled(limit) : Auth.layer(limit).pipe(Layer.provide(layer(auth)))
