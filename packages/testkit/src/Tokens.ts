/**
 * Bearer tokens for tests, signed with the system's development key (the
 * DevelopmentTokens a test layer provides): as request metadata or headers,
 * `{ authorization: "Bearer ..." }`.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { METADATA_WRITE_SCOPE, RATINGS_INGEST_SCOPE } from "@movieapp/contracts/Auth"
import * as DevelopmentTokens from "@movieapp/platform/DevelopmentTokens"
import { Effect, Layer, Redacted } from "effect"

/** A fresh development key, for tests that sign tokens for services they start as processes. */
export const layer = DevelopmentTokens.layer.pipe(Layer.provide(NodeFileSystem.layer))

/**
 * The settings under which a service process trusts the development key:
 * `AUTH_PUBLIC_KEY_FILE`, `AUTH_ISSUER`, `AUTH_AUDIENCE`.
 */
export const serviceEnv = Effect.map(DevelopmentTokens.DevelopmentTokens, ({ verifier }) => ({
  AUTH_PUBLIC_KEY_FILE: verifier.key.path,
  AUTH_ISSUER: verifier.issuer,
  AUTH_AUDIENCE: verifier.audience
}))

/**
 * For a test that builds services itself: writes verified against a fresh
 * development key, and the key to sign tokens with (no rate limits).
 */
export const layerWriteAccess = DevelopmentTokens.layerWriteAccess().pipe(
  Layer.provideMerge(DevelopmentTokens.layer),
  Layer.provide(NodeFileSystem.layer)
)

/** A token with these claims. */
export const sign = (claims: DevelopmentTokens.Claims) =>
  Effect.flatMap(DevelopmentTokens.DevelopmentTokens, (tokens) => tokens.sign(claims))

/** `{ authorization: "Bearer <token>" }` for a token with these claims. */
export const bearer = (claims: DevelopmentTokens.Claims) =>
  Effect.map(sign(claims), (token) => ({ authorization: `Bearer ${token}` }))

/** A user rating as themselves. */
export const user = (sub: string) => bearer({ sub })

/** An editor: may write metadata. */
export const editor = bearer({ sub: "editor", scope: METADATA_WRITE_SCOPE })

const INGESTOR = { sub: "ratingingestor", scope: RATINGS_INGEST_SCOPE }

/** The ingestor: may submit rating events of any user. */
export const ingestor = bearer(INGESTOR)

/** The ingestor's token itself, for RatingEventPublisherRpc and RATING_TOKEN. */
export const ingestorToken = Effect.map(sign(INGESTOR), Redacted.make)
