/**
 * The jose verifier on its own: an RSA key file (RS256) beside the EC one the
 * system tests use, and a JWKS served over a real socket, cached, and fetched
 * again when a token names a key it does not hold (a rotation).
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as jose from "jose"
import { generateKeyPairSync } from "node:crypto"
import { mkdtempSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as DevelopmentTokens from "../src/DevelopmentTokens.js"
import * as TokenVerifierJose from "../src/TokenVerifierJose.js"

const claims = { sub: "ann", issuer: "issuer", audience: "audience" }
const verifierConfig = { issuer: "issuer", audience: "audience", clockTolerance: Duration.seconds(30) }

/** A JWKS endpoint on loopback serving `keys()` at each request, counting them. */
const jwksServer = (keys: () => ReadonlyArray<jose.JWK>) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: URL; readonly fetches: () => number; readonly close: () => void }>((resume) => {
      let fetches = 0
      const server = http.createServer((_, response) => {
        fetches++
        response.setHeader("content-type", "application/json")
        response.end(JSON.stringify({ keys: keys() }))
      })
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({
          url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`),
          fetches: () => fetches,
          close: () => server.close()
        })))
    }),
    (server) => Effect.sync(() => server.close())
  )

const ecKey = async (kid: string) => {
  const { privateKey, publicKey } = await jose.generateKeyPair("ES256", { extractable: true })
  return { privateKey, jwk: { ...await jose.exportJWK(publicKey), kid, alg: "ES256", use: "sig" } }
}

const signWithKid = (privateKey: jose.CryptoKey, kid: string) =>
  new jose.SignJWT({})
    .setProtectedHeader({ alg: "ES256", kid })
    .setSubject("ann")
    .setIssuer("issuer")
    .setAudience("audience")
    .setExpirationTime("1h")
    .sign(privateKey)

describe("TokenVerifierJose", () => {
  it.effect("an RSA public key file verifies RS256 tokens signed by its private key, and only those", () =>
    Effect.gen(function*() {
      const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 })
      const path = join(mkdtempSync(join(tmpdir(), "movieapp-rsa-")), "public.pem")
      writeFileSync(path, publicKey.export({ type: "spki", format: "pem" }))
      const verifier = yield* TokenVerifierJose.make({ ...verifierConfig, key: { _tag: "PublicKeyFile", path } })
      const token = yield* Effect.promise(() => DevelopmentTokens.sign(privateKey, "RS256", claims))
      const caller = yield* verifier.verify(token)
      assert.strictEqual(caller.subject, "ann")
      const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey
      const forged = yield* Effect.promise(() => DevelopmentTokens.sign(other, "RS256", claims))
      assert.strictEqual(
        (yield* Effect.flip(verifier.verify(forged))).message,
        "unauthenticated: the token is not signed by a trusted key"
      )
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("a JWKS URL: keys fetched once and cached; a token naming a new key fetches them again (rotation)", () =>
    Effect.gen(function*() {
      const first = yield* Effect.promise(() => ecKey("first"))
      const second = yield* Effect.promise(() => ecKey("second"))
      let published = [first.jwk]
      const jwks = yield* jwksServer(() => published)
      const verifier = yield* TokenVerifierJose.make(
        { ...verifierConfig, key: { _tag: "Jwks", url: jwks.url } },
        { jwksCooldown: 0 }
      )
      const byFirst = yield* Effect.promise(() => signWithKid(first.privateKey, "first"))
      assert.strictEqual((yield* verifier.verify(byFirst)).subject, "ann")
      assert.strictEqual((yield* verifier.verify(byFirst)).subject, "ann")
      assert.strictEqual(jwks.fetches(), 1, "cached")

      published = [first.jwk, second.jwk]
      const bySecond = yield* Effect.promise(() => signWithKid(second.privateKey, "second"))
      assert.strictEqual((yield* verifier.verify(bySecond)).subject, "ann")
      assert.strictEqual(jwks.fetches(), 2, "fetched again for the unknown key id")

      const unknown = yield* Effect.promise(() => ecKey("third"))
      const byUnknown = yield* Effect.promise(() => signWithKid(unknown.privateKey, "third"))
      assert.strictEqual(
        (yield* Effect.flip(verifier.verify(byUnknown))).message,
        "unauthenticated: the token is not signed by a trusted key"
      )
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("a JWKS URL nobody answers: ServiceUnavailable, not a refusal of the token", () =>
    Effect.gen(function*() {
      const jwks = yield* jwksServer(() => [])
      jwks.close()
      const verifier = yield* TokenVerifierJose.make({ ...verifierConfig, key: { _tag: "Jwks", url: jwks.url } })
      const key = yield* Effect.promise(() => ecKey("k"))
      const error = yield* Effect.flip(verifier.verify(yield* Effect.promise(() => signWithKid(key.privateKey, "k"))))
      assert.strictEqual(error._tag, "ServiceUnavailable")
      assert.strictEqual(error.message, "auth unavailable: the key set cannot be fetched")
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
