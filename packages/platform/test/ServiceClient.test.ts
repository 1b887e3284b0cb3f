/**
 * Client-side load balancing over real Effect RPC servers, each behind a TCP
 * proxy that can cut it off (a dead instance: connections reset, new ones
 * refused) and counts the connections clients open. Discovery is the memory
 * registry. An attempt on an instance that cannot be reached is logged as a
 * warning naming it, which the tests count.
 */
import { Rpc, RpcGroup } from "@effect/rpc"
import { assert, describe, it } from "@effect/vitest"
import * as TcpProxy from "@movieapp/testkit/TcpProxy"
import { Context, Effect, HashMap, Layer, Logger, LogLevel, Option, Ref, Schema, Stream } from "effect"
import { Discovery, type Instance } from "../src/Discovery.js"
import * as DiscoveryMemory from "../src/DiscoveryMemory.js"
import * as RpcTransport from "../src/RpcTransport.js"
import * as ServiceClient from "../src/ServiceClient.js"
import * as Tls from "../src/Tls.js"

class Echo extends RpcGroup.make(Rpc.make("Whoami", { success: Schema.String })) {}

/** One instance of the "echo" service: an RPC server answering its name, reached through a proxy. */
const backend = (name: string) =>
  Effect.gen(function*() {
    const served = yield* Ref.make(0)
    const handlers = Echo.toLayer({ Whoami: () => Ref.update(served, (n) => n + 1).pipe(Effect.as(name)) })
    const context = yield* Layer.build(
      RpcTransport.serve(Echo, { host: "127.0.0.1", port: 0 }).pipe(Layer.provide(handlers))
    )
    const proxy = yield* TcpProxy.make({ host: "127.0.0.1", port: Context.get(context, RpcTransport.RpcListener).port })
    const instance: Instance = { id: `echo-${name}`, service: "echo", host: "127.0.0.1", port: proxy.port }
    return { name, instance, proxy, served: Ref.get(served) }
  })

const whoami = (client: ServiceClient.ServiceClient<Rpc.Any>) =>
  (client as unknown as ServiceClient.ServiceClient<RpcGroup.Rpcs<typeof Echo>>).call("Echo.Whoami", (c) => c.Whoami())

const clientOf = (options: Partial<ServiceClient.Options> = {}) =>
  ServiceClient.make(Echo, { service: "echo", retries: 3, backoff: "10 millis", skip: "1 second", ...options }).pipe(
    Effect.provideService(Tls.ServerTls, Option.none())
  )

/** A memory registry that counts lookups and watches, to show the client does neither per call. */
const countingDiscovery = Effect.gen(function*() {
  const memory = yield* DiscoveryMemory.make({ ttl: "1 minute" })
  const lookups = yield* Ref.make(0)
  const watches = yield* Ref.make(0)
  const discovery = Discovery.of({
    ...memory,
    healthy: (service) => Ref.update(lookups, (n) => n + 1).pipe(Effect.zipRight(memory.healthy(service))),
    watch: (service) => Stream.unwrap(Ref.update(watches, (n) => n + 1).pipe(Effect.as(memory.watch(service))))
  })
  return { discovery, lookups: Ref.get(lookups), watches: Ref.get(watches) }
})

const setup = Effect.gen(function*() {
  const { discovery, lookups, watches } = yield* countingDiscovery
  const unreachable = yield* Ref.make<ReadonlyArray<string>>([])
  // Keeps the warnings about unreachable instances, naming each, and shows nothing.
  const logger = Logger.make(({ annotations, message }) => {
    if ([message].flat().includes("instance unreachable; skipping it")) {
      const instance = String(Option.getOrElse(HashMap.get(annotations, "instance"), () => ""))
      Effect.runSync(Ref.update(unreachable, (all) => [...all, instance]))
    }
  })
  const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provideService(Discovery, discovery),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
  return { discovery, lookups, watches, provide, unreachable: Ref.get(unreachable) }
})

const quiet = Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))

describe("ServiceClient", () => {
  it.live("spreads calls over the healthy instances, reusing one connection per instance, with no lookup per call", () =>
    Effect.gen(function*() {
      const { discovery, lookups, provide, watches } = yield* setup
      const backends = [yield* backend("a"), yield* backend("b"), yield* backend("c")]
      for (const b of backends) yield* discovery.register(b.instance)
      const client = yield* provide(clientOf())
      const answers: Array<string> = []
      for (let i = 0; i < 30; i++) answers.push(yield* provide(whoami(client as never)))
      for (const b of backends) {
        assert.strictEqual(yield* b.served, 10, `${b.name} served`)
        assert.strictEqual(yield* b.proxy.connections, 1, `${b.name} connections`)
      }
      // At most the first call looks up, when it runs before discovery delivered the first view.
      assert.isAtMost(yield* lookups, 1)
      assert.strictEqual(yield* watches, 1)
    }).pipe(Effect.scoped, quiet))

  it.live("an instance that cannot be reached is skipped, then tried again later", () =>
    Effect.gen(function*() {
      const { discovery, provide, unreachable } = yield* setup
      const [a, b] = [yield* backend("a"), yield* backend("b")]
      yield* discovery.register(a.instance)
      yield* discovery.register(b.instance)
      const client = yield* provide(clientOf({ skip: "1 second" }))
      yield* a.proxy.cut
      const answers: Array<string> = []
      for (let i = 0; i < 20; i++) answers.push(yield* provide(whoami(client as never)))
      // Every call answered, by b; a was tried once, then left alone for its skip time.
      assert.deepStrictEqual(new Set(answers), new Set(["b"]))
      assert.deepStrictEqual(yield* unreachable, ["echo-a"])
      yield* a.proxy.restore
      // Once its skip time is over, a gets calls again.
      const deadline = Date.now() + 10_000
      while ((yield* a.served) === 0) {
        assert.isBelow(Date.now(), deadline, "a was never tried again")
        yield* provide(whoami(client as never))
      }
    }).pipe(Effect.scoped, quiet))

  it.live("when every instance fails, each attempt still tries one, and the call is UNAVAILABLE once the retries are spent", () =>
    Effect.gen(function*() {
      const { discovery, provide, unreachable } = yield* setup
      const [a, b] = [yield* backend("a"), yield* backend("b")]
      yield* discovery.register(a.instance)
      yield* discovery.register(b.instance)
      const client = yield* provide(clientOf({ retries: 3 }))
      yield* a.proxy.cut
      yield* b.proxy.cut
      const error = yield* Effect.flip(provide(whoami(client as never)))
      assert.strictEqual(error._tag, "ServiceUnavailable")
      assert.strictEqual((yield* unreachable).length, 1 + 3)
    }).pipe(Effect.scoped, quiet))

  it.live("follows discovery: a deregistered instance gets no more calls, a new one gets its share", () =>
    Effect.gen(function*() {
      const { discovery, provide } = yield* setup
      const [a, b, c] = [yield* backend("a"), yield* backend("b"), yield* backend("c")]
      yield* discovery.register(a.instance)
      yield* discovery.register(b.instance)
      const client = yield* provide(clientOf())
      for (let i = 0; i < 4; i++) yield* provide(whoami(client as never))
      yield* discovery.deregister(a.instance.id)
      yield* discovery.register(c.instance)
      // The view follows discovery in the background: wait until c has been called.
      const deadline = Date.now() + 10_000
      while ((yield* c.served) === 0) {
        assert.isBelow(Date.now(), deadline, "c never got a call")
        yield* provide(whoami(client as never))
      }
      const servedByA = yield* a.served
      const connectionsToA = yield* a.proxy.connections
      const answers: Array<string> = []
      for (let i = 0; i < 10; i++) answers.push(yield* provide(whoami(client as never)))
      assert.deepStrictEqual(new Set(answers), new Set(["b", "c"]))
      assert.strictEqual(yield* a.served, servedByA)
      assert.strictEqual(yield* a.proxy.connections, connectionsToA)
    }).pipe(Effect.scoped, quiet))

  it.live("no healthy instance is UNAVAILABLE, naming the service", () =>
    Effect.gen(function*() {
      const { provide } = yield* setup
      const client = yield* provide(clientOf({ retries: 1 }))
      const error = yield* Effect.flip(provide(whoami(client as never)))
      assert.deepInclude(error, { _tag: "ServiceUnavailable", service: "echo", reason: "no healthy instance" })
    }).pipe(Effect.scoped, quiet))
})
