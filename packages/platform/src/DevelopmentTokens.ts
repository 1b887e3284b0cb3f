/**
 * A signing key made at start and tokens signed with it, for the dev stack and
 * tests: an ES256 key pair whose public half is written to a file, as an
 * operator's would be, and read back by the real verifier (TokenVerifierJose).
 * The private key never leaves the process and dies with the scope. Not for
 * production: there tokens come from an identity provider (see docs/configuration.md).
 */
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Context, Duration, Effect, Layer, type Scope } from "effect"
import * as jose from "jose"
import type { KeyObject } from "node:crypto"
import * as Auth from "./Auth.js"
import * as RateLimit from "./RateLimit.js"
import * as TokenVerifierJose from "./TokenVerifierJose.js"

/** The issuer and audience of development tokens. */
export const ISSUER = "movieapp-dev"
export const AUDIENCE = "movieapp"

/** What a development token says; every field but `sub` has a default that verifies. */
export interface Claims {
  readonly sub?: string | undefined
  /** Space-separated scopes (`metadata:write`). */
  readonly scope?: string | undefined
  readonly issuer?: string
  readonly audience?: string
  /** How long from now the token is valid (1 hour by default). */
  readonly expiresIn?: Duration.DurationInput
  /** Seconds since the epoch when the token expires, instead of `expiresIn`: in the past for an expired one. */
  readonly expiresAt?: number
  /** Seconds since the epoch before which the token is not valid yet. */
  readonly notBefore?: number
}

export class DevelopmentTokens extends Context.Tag("@movieapp/platform/DevelopmentTokens")<DevelopmentTokens, {
  /** How a verifier trusts these tokens: the public key's file, issuer, audience, 30 s of clock skew. */
  readonly verifier: Auth.VerifierConfig & { readonly key: { readonly _tag: "PublicKeyFile"; readonly path: string } }
  /** A token signed with the key. */
  readonly sign: (claims: Claims) => Effect.Effect<string>
}>() {}

/**
 * A token with `claims`, signed with `privateKey` (ES256 or RS256): what the
 * dev stack, the tests and `npm run token` issue.
 */
export const sign = (privateKey: jose.CryptoKey | KeyObject, algorithm: "ES256" | "RS256", claims: Claims) => {
  const now = Math.floor(Date.now() / 1000)
  const jwt = new jose.SignJWT(claims.scope === undefined ? {} : { scope: claims.scope })
    .setProtectedHeader({ alg: algorithm, typ: "JWT" })
    .setIssuer(claims.issuer ?? ISSUER)
    .setAudience(claims.audience ?? AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(claims.expiresAt ?? now + Math.round(Duration.toSeconds(claims.expiresIn ?? Duration.hours(1))))
  if (claims.sub !== undefined) jwt.setSubject(claims.sub)
  if (claims.notBefore !== undefined) jwt.setNotBefore(claims.notBefore)
  return jwt.sign(privateKey)
}

/** A fresh key pair; its public key file is removed when the scope closes. */
export const make: Effect.Effect<DevelopmentTokens["Type"], PlatformError, Scope.Scope | FileSystem.FileSystem> = Effect
  .gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { privateKey, publicKey } = yield* Effect.promise(() => jose.generateKeyPair("ES256", { extractable: true }))
    const directory = yield* fs.makeTempDirectoryScoped({ prefix: "movieapp-auth-" })
    const path = `${directory}/public.pem`
    yield* fs.writeFileString(path, yield* Effect.promise(() => jose.exportSPKI(publicKey)))
    return DevelopmentTokens.of({
      verifier: {
        key: { _tag: "PublicKeyFile", path },
        issuer: ISSUER,
        audience: AUDIENCE,
        clockTolerance: Duration.seconds(30)
      },
      sign: (claims) => Effect.promise(() => sign(privateKey, "ES256", claims))
    })
  })

export const layer: Layer.Layer<DevelopmentTokens, PlatformError, FileSystem.FileSystem> = Layer.scoped(
  DevelopmentTokens,
  make
)

/** Writes verified against the development key, with their own rate limits (none by default). */
export const layerWriteAccess = (
  limit: RateLimit.RateLimitConfig = RateLimit.off
): Layer.Layer<Auth.WriteAccess, TokenVerifierJose.KeyFileError, DevelopmentTokens | FileSystem.FileSystem> =>
  Layer.unwrapEffect(
    Effect.map(
      DevelopmentTokens,
      (tokens) => Auth.layer(limit).pipe(Layer.provide(TokenVerifierJose.layer(tokens.verifier)))
    )
  )
