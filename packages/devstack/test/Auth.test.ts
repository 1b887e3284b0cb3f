/**
 * Writes only by whom they belong to, over real sockets at every edge that
 * writes: gRPC (movieapp.v1 and the original services), HTTP JSON and Effect
 * RPC. A write without a valid token is UNAUTHENTICATED / 401 (with
 * `WWW-Authenticate`) saying why in words that hold nothing of it; a valid token
 * for another user or without the scope is PERMISSION_DENIED / 403; nothing is
 * stored either way. Reads need no token. No token, and no key, ever reaches a
 * log line or a span.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import { METADATA_WRITE_SCOPE, RATINGS_INGEST_SCOPE } from "@movieapp/contracts/Auth"
import { Metadata, MetadataRpcs } from "@movieapp/contracts/Metadata"
import { RatingRpcs, RatingValue, RecordId, UserId } from "@movieapp/contracts/Rating"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as DevelopmentTokens from "@movieapp/platform/DevelopmentTokens"
import { Code } from "@movieapp/platform/GrpcStatus"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import * as legacy from "@movieapp/proto/gen/legacy/movie"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as Logs from "@movieapp/testkit/Logs"
import * as Tokens from "@movieapp/testkit/Tokens"
import * as Tracing from "@movieapp/testkit/Tracing"
import { Effect, Layer, Logger, LogLevel } from "effect"
import * as jose from "jose"
import { readFileSync } from "node:fs"
import * as System from "../src/System.js"

const logs = Logs.make()
const recorder = Tracing.make()

/** The system with every log line captured (all levels) and every span recorded. */
const SystemTest = System.layer({
  host: "127.0.0.1",
  ...System.ephemeralPorts,
  tracing: (service) => recorder.tracing(service)
}).pipe(
  Layer.provideMerge(DevelopmentTokens.layer),
  Layer.provide([logs.layer, Logger.minimumLogLevel(LogLevel.All), NodeFileSystem.layer])
)

/** Every credential a test sent, to look for afterwards where none may be. */
const sent: Array<string> = []
const remember = (token: string) => {
  sent.push(token)
  return token
}

/** A credential that names nobody, and the reason the services give for it. */
interface Refused {
  readonly name: string
  readonly authorization: Effect.Effect<string | undefined, never, DevelopmentTokens.DevelopmentTokens>
  readonly reason: string
}

const signed = (claims: DevelopmentTokens.Claims) =>
  Effect.map(Tokens.sign(claims), (token) => `Bearer ${remember(token)}`)

/** A token signed with a key of its own, which the services were never told about. */
const otherKey = (claims: DevelopmentTokens.Claims) =>
  Effect.scoped(Effect.flatMap(DevelopmentTokens.make, (other) => other.sign(claims))).pipe(
    Effect.provide(NodeFileSystem.layer),
    Effect.orDie,
    Effect.map((token) => `Bearer ${remember(token)}`)
  )

/** A token signed with a shared secret (HS256): never accepted, whatever the secret. */
const sharedSecret = (sub: string) =>
  Effect.promise(() =>
    new jose.SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(sub)
      .setIssuer(DevelopmentTokens.ISSUER)
      .setAudience(DevelopmentTokens.AUDIENCE)
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("a secret anyone holding it could sign with"))
  ).pipe(Effect.map((token) => `Bearer ${remember(token)}`))

/** Credentials that name nobody, for a token that would otherwise speak for `sub` with `scope`. */
const refusals = (sub: string, scope?: string): ReadonlyArray<Refused> => [
  {
    name: "no token",
    authorization: Effect.succeed(undefined),
    reason: "no bearer token (send authorization: Bearer <token>)"
  },
  {
    name: "not a bearer token",
    authorization: Effect.succeed(`Basic ${remember(Buffer.from(`${sub}:password`).toString("base64"))}`),
    reason: "the authorization header is not a bearer token"
  },
  {
    name: "malformed",
    authorization: Effect.succeed(`Bearer ${remember("not-a-jwt")}`),
    reason: "the token is malformed"
  },
  {
    name: "expired",
    authorization: signed({ sub, scope, expiresAt: Math.floor(Date.now() / 1000) - 120 }),
    reason: "the token has expired"
  },
  {
    name: "not valid yet",
    authorization: signed({ sub, scope, notBefore: Math.floor(Date.now() / 1000) + 600 }),
    reason: "the token is not valid yet"
  },
  {
    name: "wrong issuer",
    authorization: signed({ sub, scope, issuer: "https://issuer.example" }),
    reason: "the token's issuer is not accepted"
  },
  {
    name: "wrong audience",
    authorization: signed({ sub, scope, audience: "another-api" }),
    reason: "the token's audience is not accepted"
  },
  {
    name: "wrong key",
    authorization: otherKey({ sub, scope }),
    reason: "the token is not signed by a trusted key"
  },
  {
    name: "shared secret (HS256)",
    authorization: sharedSecret(sub),
    reason: "the token's algorithm is not accepted (ES256 or RS256 only)"
  },
  { name: "no subject", authorization: signed({ scope }), reason: "the token has no sub claim" }
]

const metadataFor = (authorization: string | undefined) => authorization === undefined ? {} : { authorization }

const http = (port: number, method: string, path: string, authorization: string | undefined, body?: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { "content-type": "application/json", ...metadataFor(authorization) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    return {
      status: response.status,
      challenge: response.headers.get("www-authenticate"),
      body: await response.json() as { readonly code: string; readonly message: string }
    }
  })

const movie = (id: string) => ({ id, title: "Heat", description: "", director: "Michael Mann" })

describe("authenticated writes", () => {
  layer(SystemTest, { excludeTestServices: true, timeout: "120 seconds" })("at every edge that writes", (it) => {
    const ports = Effect.all({ metadata: MetadataServer.Ports, rating: RatingServer.Ports })
    /** The aggregate of `recordId` as a reader sees it: with no token at all. */
    const countOf = (recordId: string) =>
      Effect.flatMap(RatingServer.Ports, ({ grpc }) =>
        Effect.scoped(Effect.flatMap(
          Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${grpc}`),
          (client) => Grpc.call(Grpc.method(client, "getAggregatedRating"), { recordId, recordType: "movie" })
        ))).pipe(Effect.map((aggregate) => aggregate.ratingsCount))

    /** Rating and metadata clients of one API generation (the original's methods have the same shapes). */
    const clientsOf = (api: "movieapp.v1" | "original") =>
      Effect.gen(function*() {
        const { metadata, rating } = yield* ports
        const ratings = api === "movieapp.v1"
          ? yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${rating.grpc}`)
          : yield* Grpc.client(
            legacy.RatingServiceClient as unknown as typeof v1Rating.RatingServiceClient,
            `127.0.0.1:${rating.grpc}`
          )
        const movies = api === "movieapp.v1"
          ? yield* Grpc.client(v1Metadata.MetadataServiceClient, `127.0.0.1:${metadata.grpc}`)
          : yield* Grpc.client(
            legacy.MetadataServiceClient as unknown as typeof v1Metadata.MetadataServiceClient,
            `127.0.0.1:${metadata.grpc}`
          )
        return { movies, ratings }
      })

    for (const api of ["movieapp.v1", "original"] as const) {
      it.scoped(`gRPC ${api}: PutRating and PutMetadata without a valid token are UNAUTHENTICATED, saying why; nothing stored`, () =>
        Effect.gen(function*() {
          const { movies, ratings } = yield* clientsOf(api)
          const recordId = `grpc-${api}`
          for (const refused of refusals("ann", METADATA_WRITE_SCOPE)) {
            const authorization = yield* refused.authorization
            const put = yield* Effect.flip(Grpc.call(Grpc.method(ratings, "putRating"), {
              recordId,
              recordType: "movie",
              userId: "ann",
              ratingValue: 7
            }, { metadata: metadataFor(authorization) }))
            assert.strictEqual(put.code, Code.UNAUTHENTICATED, `${refused.name}: ${put.details}`)
            assert.strictEqual(put.details, `unauthenticated: ${refused.reason}`, refused.name)
            const putMetadata = yield* Effect.flip(
              Grpc.call(Grpc.method(movies, "putMetadata"), { metadata: movie(recordId) }, {
                metadata: metadataFor(authorization)
              })
            )
            assert.strictEqual(putMetadata.code, Code.UNAUTHENTICATED, `${refused.name}: ${putMetadata.details}`)
            assert.strictEqual(putMetadata.details, `unauthenticated: ${refused.reason}`, refused.name)
          }
          assert.strictEqual(yield* countOf(recordId), 0)
          const stored = yield* Effect.flip(Grpc.call(Grpc.method(movies, "getMetadata"), { movieId: recordId }))
          assert.strictEqual(stored.code, Code.NOT_FOUND)
        }))

      it.scoped(`gRPC ${api}: another user's rating and metadata without the scope are PERMISSION_DENIED; the owner's are taken`, () =>
        Effect.gen(function*() {
          const { movies, ratings } = yield* clientsOf(api)
          const recordId = `grpc-denied-${api}`
          const bob = { metadata: yield* Tokens.user("bob") }
          const rateAsAnn = { recordId, recordType: "movie", userId: "ann", ratingValue: 7 }
          const mismatch = yield* Effect.flip(Grpc.call(Grpc.method(ratings, "putRating"), rateAsAnn, bob))
          assert.strictEqual(mismatch.code, Code.PERMISSION_DENIED, mismatch.details)
          assert.strictEqual(mismatch.details, "permission denied: the rating's user must be the token's subject")
          const noScope = yield* Effect.flip(
            Grpc.call(Grpc.method(movies, "putMetadata"), { metadata: movie(recordId) }, bob)
          )
          assert.strictEqual(noScope.code, Code.PERMISSION_DENIED, noScope.details)
          assert.strictEqual(noScope.details, "permission denied: the token lacks the scope metadata:write")
          assert.strictEqual(yield* countOf(recordId), 0)

          yield* Grpc.call(Grpc.method(ratings, "putRating"), rateAsAnn, { metadata: yield* Tokens.user("ann") })
          assert.strictEqual(yield* countOf(recordId), 1)
          yield* Grpc.call(Grpc.method(movies, "putMetadata"), { metadata: movie(recordId) }, {
            metadata: yield* Tokens.editor
          })
        }))
    }

    it.scoped("gRPC movieapp.v1 DeleteRating: only by the rating's user, with a valid token", () =>
      Effect.gen(function*() {
        const { rating } = yield* ports
        const ratings = yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${rating.grpc}`)
        const key = { recordId: "grpc-delete", recordType: "movie", userId: "ann" }
        yield* Grpc.call(Grpc.method(ratings, "putRating"), { ...key, ratingValue: 3 }, {
          metadata: yield* Tokens.user("ann")
        })
        for (const refused of refusals("ann")) {
          const authorization = yield* refused.authorization
          const error = yield* Effect.flip(
            Grpc.call(Grpc.method(ratings, "deleteRating"), key, { metadata: metadataFor(authorization) })
          )
          assert.strictEqual(error.code, Code.UNAUTHENTICATED, `${refused.name}: ${error.details}`)
          assert.strictEqual(error.details, `unauthenticated: ${refused.reason}`)
        }
        const denied = yield* Effect.flip(
          Grpc.call(Grpc.method(ratings, "deleteRating"), key, { metadata: yield* Tokens.user("bob") })
        )
        assert.strictEqual(denied.code, Code.PERMISSION_DENIED)
        assert.strictEqual(yield* countOf("grpc-delete"), 1)
        yield* Grpc.call(Grpc.method(ratings, "deleteRating"), key, { metadata: yield* Tokens.user("ann") })
        assert.strictEqual(yield* countOf("grpc-delete"), 0)
      }))

    it.effect("HTTP: PUT /rating, DELETE /rating and PUT /metadata without a valid token are 401 with WWW-Authenticate; 403 for another user or without the scope", () =>
      Effect.gen(function*() {
        const { metadata, rating } = yield* ports
        const recordId = "http-1"
        const rateAsAnn = { recordId, recordType: "movie", userId: "ann", value: 7 }
        for (const refused of refusals("ann", METADATA_WRITE_SCOPE)) {
          const authorization = yield* refused.authorization
          for (
            const answer of [
              yield* http(rating.http, "PUT", "/rating", authorization, rateAsAnn),
              yield* http(rating.http, "DELETE", `/rating?id=${recordId}&type=movie&userId=ann`, authorization),
              yield* http(metadata.http, "PUT", "/metadata", authorization, movie(recordId))
            ]
          ) {
            assert.strictEqual(answer.status, 401, `${refused.name}: ${answer.body.message}`)
            assert.deepStrictEqual(answer.body, {
              code: "UNAUTHENTICATED",
              message: `unauthenticated: ${refused.reason}`
            })
            assert.strictEqual(
              answer.challenge,
              authorization === undefined ? `Bearer realm="movieapp"` : `Bearer realm="movieapp", error="invalid_token"`
            )
          }
        }
        const bob = (yield* Tokens.user("bob")).authorization
        const mismatch = yield* http(rating.http, "PUT", "/rating", bob, rateAsAnn)
        assert.deepStrictEqual([mismatch.status, mismatch.body], [403, {
          code: "PERMISSION_DENIED",
          message: "permission denied: the rating's user must be the token's subject"
        }])
        const deleteOther = yield* http(rating.http, "DELETE", `/rating?id=${recordId}&type=movie&userId=ann`, bob)
        assert.strictEqual(deleteOther.status, 403)
        const noScope = yield* http(metadata.http, "PUT", "/metadata", bob, movie(recordId))
        assert.deepStrictEqual([noScope.status, noScope.body], [403, {
          code: "PERMISSION_DENIED",
          message: "permission denied: the token lacks the scope metadata:write"
        }])
        assert.strictEqual(yield* countOf(recordId), 0)
        assert.strictEqual((yield* http(metadata.http, "GET", `/metadata?id=${recordId}`, undefined)).status, 404)

        const ann = (yield* Tokens.user("ann")).authorization
        assert.strictEqual((yield* http(rating.http, "PUT", "/rating", ann, rateAsAnn)).status, 200)
        assert.strictEqual(yield* countOf(recordId), 1)
      }))

    it.effect("HTTP, as gRPC: who calls is settled before the request is read; a stranger's invalid write is 401, a user's 400", () =>
      Effect.gen(function*() {
        const { metadata, rating } = yield* ports
        const badRating = { recordId: "", recordType: "show", userId: "ann", value: 99 }
        const badDelete = "/rating?id=&type=show&userId=ann"
        const badMovie = { id: "", title: 7 }
        const writes = (authorization: string | undefined) =>
          Effect.all([
            http(rating.http, "PUT", "/rating", authorization, badRating),
            http(rating.http, "DELETE", badDelete, authorization),
            http(metadata.http, "PUT", "/metadata", authorization, badMovie)
          ])
        for (const answer of yield* writes(undefined)) {
          assert.deepStrictEqual([answer.status, answer.body.code], [401, "UNAUTHENTICATED"], answer.body.message)
        }
        // With a token, the same requests are read and refused for what they hold.
        for (const answer of yield* writes((yield* Tokens.editor).authorization)) {
          assert.deepStrictEqual([answer.status, answer.body.code], [400, "INVALID_ARGUMENT"], answer.body.message)
        }
      }))

    it.effect("OpenAPI: each write names the bearer scheme, each read none", () =>
      Effect.gen(function*() {
        const { metadata, rating } = yield* ports
        const documentOf = (port: number) =>
          Effect.promise(() =>
            fetch(`http://127.0.0.1:${port}/openapi.json`).then((response) => response.json() as Promise<any>)
          )
        for (
          const [port, writes, reads] of [
            [rating.http, [["/rating", "put"], ["/rating", "delete"]], [["/rating", "get"]]],
            [metadata.http, [["/metadata", "put"]], [["/metadata", "get"]]]
          ] as const
        ) {
          const document = yield* documentOf(port)
          assert.deepInclude(document.components.securitySchemes.bearer, {
            type: "http",
            scheme: "bearer",
            bearerFormat: "JWT"
          })
          for (const [path, method] of writes) {
            assert.deepStrictEqual(document.paths[path][method].security, [{ bearer: [] }], `${method} ${path}`)
          }
          for (const [path, method] of reads) {
            assert.deepStrictEqual(document.paths[path][method].security, [], `${method} ${path}`)
          }
        }
      }))

    it.scoped("Effect RPC: writes without a valid token fail Unauthenticated; another user's, or without the scope, PermissionDenied", () =>
      Effect.gen(function*() {
        const { metadata, rating } = yield* ports
        const ratings = yield* RpcTransport.makeClient(RatingRpcs, { host: "127.0.0.1", port: rating.rpc! })
        const movies = yield* RpcTransport.makeClient(MetadataRpcs, { host: "127.0.0.1", port: metadata.rpc! })
        const recordId = "rpc-1"
        const rateAsAnn = {
          recordId: RecordId.make(recordId),
          recordType: "movie" as const,
          userId: UserId.make("ann"),
          value: RatingValue.make(7)
        }
        const event = { eventType: "put", recordType: "movie", recordId, userId: "ann", value: 7 }
        for (const refused of refusals("ann", `${METADATA_WRITE_SCOPE} ${RATINGS_INGEST_SCOPE}`)) {
          const authorization = yield* refused.authorization
          const headers = { headers: metadataFor(authorization) }
          for (
            const error of [
              yield* Effect.flip(ratings.PutRating(rateAsAnn, headers)),
              yield* Effect.flip(ratings.DeleteRating({ ...rateAsAnn }, headers)),
              yield* Effect.flip(ratings.SubmitRatingEvents({ events: [event] }, headers)),
              yield* Effect.flip(movies.PutMetadata({ metadata: Metadata.make(movie(recordId) as never) }, headers))
            ]
          ) {
            assert.strictEqual(error._tag, "Unauthenticated", `${refused.name}: ${error.message}`)
            assert.strictEqual(error.message, `unauthenticated: ${refused.reason}`)
          }
        }
        const bob = { headers: yield* Tokens.user("bob") }
        for (
          const [error, reason] of [
            [yield* Effect.flip(ratings.PutRating(rateAsAnn, bob)), "the rating's user must be the token's subject"],
            [
              yield* Effect.flip(ratings.SubmitRatingEvents({ events: [event] }, bob)),
              "the token lacks the scope ratings:ingest"
            ],
            [
              yield* Effect.flip(movies.PutMetadata({ metadata: Metadata.make(movie(recordId) as never) }, bob)),
              "the token lacks the scope metadata:write"
            ]
          ] as const
        ) {
          assert.strictEqual(error._tag, "PermissionDenied", error.message)
          assert.strictEqual(error.message, `permission denied: ${reason}`)
        }
        assert.strictEqual(
          (yield* ratings.GetAggregatedRating({ recordType: "movie", recordId: RecordId.make(recordId) })).count,
          0
        )
        yield* ratings.PutRating(rateAsAnn, { headers: yield* Tokens.user("ann") })
        assert.strictEqual(
          (yield* ratings.GetAggregatedRating({ recordType: "movie", recordId: RecordId.make(recordId) })).count,
          1
        )
      }))

    it.effect("no token, no key, ever in a log line or a span; refusals log nothing at all", () =>
      Effect.gen(function*() {
        const { verifier } = yield* DevelopmentTokens.DevelopmentTokens
        const publicKey = readFileSync(verifier.key.path, "utf8").split("\n")[1]!
        // The credentials the tests above sent: their signatures, the part that matters.
        const secrets = [...sent.map((token) => token.split(".").at(-1)!), publicKey].filter((s) => s.length >= 8)
        assert.isAbove(secrets.length, 10, "the tests above ran first and sent tokens")
        const logged = logs.lines().map((line) => JSON.stringify(line))
        const traced = recorder.spans().map((span) =>
          JSON.stringify({ attributes: span.attributes, events: span.events, status: span.status })
        )
        for (const secret of secrets) {
          assert.isUndefined(logged.find((line) => line.includes(secret)), "a credential in a log line")
          assert.isUndefined(traced.find((span) => span.includes(secret)), "a credential in a span")
        }
        assert.deepStrictEqual(
          logs.lines().filter((line) => line.level === "WARN" || line.level === "ERROR").map((line) => line.message),
          []
        )
      }))
  })
})
