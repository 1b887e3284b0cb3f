/** The RPC adapter against a real Effect RPC server on a real socket. */
import { HttpServer } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Principal, RATINGS_INGEST_SCOPE, requireScope } from "@movieapp/contracts/Auth"
import { InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import { type RatingEvent, RatingRpcs } from "@movieapp/contracts/Rating"
import * as Auth from "@movieapp/platform/Auth"
import * as DevelopmentTokens from "@movieapp/platform/DevelopmentTokens"
import * as Http from "@movieapp/platform/Http"
import * as RateLimit from "@movieapp/platform/RateLimit"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import * as TokenVerifierJose from "@movieapp/platform/TokenVerifierJose"
import * as Logs from "@movieapp/testkit/Logs"
import { Context, Effect, Layer, Redacted, Ref } from "effect"
import * as RatingEventPublisherRpc from "../src/adapters/RatingEventPublisherRpc.js"
import * as Ingest from "../src/Ingest.js"
import { RatingEventPublisher } from "../src/ports/RatingEventPublisher.js"
import { eventFile, put, puts } from "./fixtures.js"

/** The listeners' and the ingestion's Info lines, kept rather than printed: nothing here goes wrong on purpose but what the tests check. */
const quiet = Logs.make().layer

const at = (port: number): RpcTransport.Address => ({ host: "127.0.0.1", port })
const text = (address: RpcTransport.Address) => `${address.host}:${address.port}`

/**
 * A rating service that only takes event batches and remembers them, from
 * callers with a token of its key and the scope ratings:ingest (`token`). A
 * batch from user `reject` is refused as invalid, from `unavailable` as
 * unavailable, and a batch from `hang` is never answered.
 */
class RatingServiceStub extends Context.Tag("test/RatingServiceStub")<RatingServiceStub, {
  readonly address: RpcTransport.Address
  readonly received: Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>>
  readonly token: Redacted.Redacted<string>
  readonly sign: DevelopmentTokens.DevelopmentTokens["Type"]["sign"]
}>() {
  static readonly layer = RatingServiceStub.limited(RateLimit.off)

  /** The stub, holding each caller to `limit`. */
  static limited(limit: RateLimit.RateLimitConfig) {
    return Layer.scoped(
      RatingServiceStub,
      Effect.gen(function*() {
        const tokens = yield* DevelopmentTokens.make
        const received = yield* Ref.make<ReadonlyArray<ReadonlyArray<unknown>>>([])
        const unused = () => Effect.dieMessage("not used by the ingestor")
        const take = (
          events: ReadonlyArray<unknown>
        ): Effect.Effect<{ readonly applied: number }, InvalidArgument | ServiceUnavailable> => {
          const users = new Set(events.map((event) => (event as RatingEvent).userId as string))
          if (users.has("reject")) {
            return Effect.fail(new InvalidArgument({ field: "events.0.user_id", reason: "is not allowed" }))
          }
          if (users.has("unavailable")) {
            return Effect.fail(new ServiceUnavailable({ service: "mysql", reason: "too many connections" }))
          }
          if (users.has("hang")) return Effect.never
          return Ref.update(received, (all) => [...all, events]).pipe(Effect.as({ applied: events.length }))
        }
        const handlers = RatingRpcs.toLayer({
          SubmitRatingEvents: ({ events }) =>
            // The real service's check of the token's scope (RatingRpc): its refusal is what is tested here.
            Effect.flatMap(Principal, (caller) => requireScope(caller, RATINGS_INGEST_SCOPE)).pipe(
              Effect.zipRight(Effect.suspend(() => take(events)))
            ),
          GetAggregatedRating: unused,
          GetAggregatedRatings: unused,
          ListRanked: unused,
          PutRating: unused,
          DeleteRating: unused
        })
        const writes = Auth.layer(limit).pipe(Layer.provide(TokenVerifierJose.layer(tokens.verifier)))
        const server = yield* Layer.build(
          RpcTransport.serve(RatingRpcs, { host: "127.0.0.1", port: 0 }).pipe(
            Layer.provide([handlers, Auth.rpcAuthentication.pipe(Layer.provide(writes))]),
            Layer.provide(quiet)
          )
        )
        return {
          address: at(Context.get(server, RpcTransport.RpcListener).port),
          received: Ref.get(received),
          token: Redacted.make(yield* tokens.sign({ sub: "ratingingestor", scope: RATINGS_INGEST_SCOPE })),
          sign: tokens.sign
        }
      })
    ).pipe(Layer.provide(NodeFileSystem.layer))
  }
}

/** An HTTP server's port: something listens there, but not Effect RPC. */
const httpPort = Effect.map(
  Layer.build(Http.serve(Layer.empty, { host: "127.0.0.1", port: 0 }).pipe(Layer.provide(quiet))),
  (context) => Http.boundPort(Context.get(context, HttpServer.HttpServer))
)

/** An address where nothing listens: a port that was just bound and released. */
const closedPort = Effect.scoped(Effect.map(httpPort, at))

const publish = (
  address: RpcTransport.Address,
  events: ReadonlyArray<RatingEvent>,
  options: Partial<RatingEventPublisherRpc.Options> = {}
) =>
  Effect.flatMap(RatingEventPublisher, (publisher) => publisher.publish(events)).pipe(
    Effect.provide(RatingEventPublisherRpc.layer({ address, ...options }))
  )

describe("RatingEventPublisherRpc", () => {
  it.scopedLive("delivers batches to the rating service over one client, in order", () =>
    Effect.gen(function*() {
      const service = yield* RatingServiceStub
      const [first, second] = [puts(3, "first"), [put("second", "2", 7)]]
      yield* Effect.gen(function*() {
        const publisher = yield* RatingEventPublisher
        yield* publisher.publish(first)
        yield* publisher.publish(second)
      }).pipe(Effect.provide(RatingEventPublisherRpc.layer({ address: service.address, token: service.token })))
      assert.deepStrictEqual(yield* service.received, [first, second])
    }).pipe(Effect.provide(RatingServiceStub.layer)))

  it.scopedLive("Ingest.run publishes a file through it in batches", () =>
    Effect.gen(function*() {
      const service = yield* RatingServiceStub
      const events = puts(5)
      const summary = yield* Ingest.run({
        file: yield* eventFile(events),
        onInvalid: "abort",
        batchSize: 2,
        progress: false
      }).pipe(
        Effect.provide(RatingEventPublisherRpc.layer({ address: service.address, token: service.token })),
        Effect.provide(quiet)
      )
      assert.strictEqual(summary.published, 5)
      assert.deepStrictEqual(yield* service.received, [events.slice(0, 2), events.slice(2, 4), events.slice(4)])
    }).pipe(Effect.provide([RatingServiceStub.layer, NodeFileSystem.layer])))

  it.scopedLive("an unreachable service is a PublishError naming the address", () =>
    Effect.gen(function*() {
      const address = yield* closedPort
      const error = yield* Effect.flip(publish(address, puts(1)))
      assert.strictEqual(error._tag, "PublishError")
      assert.match(error.message, new RegExp(`^cannot reach the rating service at ${text(address)}: .*ECONNREFUSED`))
    }))

  it.scopedLive("a server that is not the rating service is a PublishError naming the address", () =>
    Effect.gen(function*() {
      const address = at(yield* httpPort)
      const error = yield* Effect.flip(publish(address, puts(1)))
      assert.match(error.message, new RegExp(`^cannot reach the rating service at ${text(address)}: `))
    }))

  it.scopedLive("InvalidArgument from the service becomes a PublishError with its message", () =>
    Effect.gen(function*() {
      const service = yield* RatingServiceStub
      const error = yield* Effect.flip(publish(service.address, [put("reject", "1", 5)], { token: service.token }))
      assert.strictEqual(error.message, "the rating service rejected a batch: events.0.user_id: is not allowed")
      assert.deepStrictEqual(yield* service.received, [])
    }).pipe(Effect.provide(RatingServiceStub.layer)))

  it.scopedLive("ServiceUnavailable from the service becomes a PublishError with its message", () =>
    Effect.gen(function*() {
      const service = yield* RatingServiceStub
      const error = yield* Effect.flip(publish(service.address, [put("unavailable", "1", 5)], { token: service.token }))
      assert.strictEqual(
        error.message,
        "the rating service cannot take events: mysql unavailable: too many connections"
      )
    }).pipe(Effect.provide(RatingServiceStub.layer)))

  it.scopedLive("no token, or one without the scope ratings:ingest: a PublishError naming RATING_TOKEN, nothing taken", () =>
    Effect.gen(function*() {
      const service = yield* RatingServiceStub
      const none = yield* Effect.flip(publish(service.address, puts(1)))
      assert.strictEqual(
        none.message,
        "the rating service refused the batch: unauthenticated: no bearer token (send authorization: Bearer <token>) " +
          "(RATING_TOKEN must hold a token with the scope ratings:ingest)"
      )
      const user = Redacted.make(yield* service.sign({ sub: "ann" }))
      const unscoped = yield* Effect.flip(publish(service.address, puts(1), { token: user }))
      assert.strictEqual(
        unscoped.message,
        "the rating service refused the batch: permission denied: the token lacks the scope ratings:ingest " +
          "(RATING_TOKEN must hold a token with the scope ratings:ingest)"
      )
      assert.deepStrictEqual(yield* service.received, [])
    }).pipe(Effect.provide(RatingServiceStub.layer)))

  it.scopedLive("over its rate limit, the publisher waits as long as the service says and sends the batch again", () =>
    Effect.gen(function*() {
      const service = yield* RatingServiceStub
      const batches = [puts(1, "a"), puts(1, "b"), puts(1, "c")]
      yield* Effect.gen(function*() {
        const publisher = yield* RatingEventPublisher
        for (const batch of batches) yield* publisher.publish(batch)
      }).pipe(Effect.provide(RatingEventPublisherRpc.layer({ address: service.address, token: service.token })))
      assert.deepStrictEqual(yield* service.received, batches)
    }).pipe(Effect.provide(RatingServiceStub.limited({ rate: 4, burst: 1 }))))

  it.scopedLive("a batch that gets no answer in time is a PublishError", () =>
    Effect.gen(function*() {
      const service = yield* RatingServiceStub
      const error = yield* Effect.flip(
        publish(service.address, [put("hang", "1", 5)], { timeout: "200 millis", token: service.token })
      )
      assert.strictEqual(error.message, `the rating service at ${text(service.address)} did not answer within 200ms`)
    }).pipe(Effect.provide(RatingServiceStub.layer)))
})
