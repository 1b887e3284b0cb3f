/**
 * The token bucket on its own, on a clock the test moves: refill, burst, and
 * memory that stays bounded; and a caller's key from what grpc-js and Node
 * report of real connections.
 */
import { assert, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import * as net from "node:net"
import * as RateLimit from "../src/RateLimit.js"

const identity = (bytes: Buffer) => bytes
/** One unary method of raw bytes: enough for grpc-js to report its callers. */
const ping: grpc.ServiceDefinition = {
  ping: {
    path: "/movieapp.test.Ping/Ping",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity
  }
}

const limiter = (config: RateLimit.RateLimitConfig, maxKeys?: number) => {
  let now = 0
  const take = RateLimit.make(config, {
    limit: "test",
    now: () => now,
    ...(maxKeys === undefined ? {} : { maxKeys })
  })!
  return { take, advance: (ms: number) => now += ms }
}

describe("RateLimit", () => {
  it("a burst is admitted at once, then one call per 1/rate; the wait says when", () => {
    const { advance, take } = limiter({ rate: 10, burst: 3 })
    assert.deepStrictEqual([take("a"), take("a"), take("a")], [0, 0, 0])
    assert.strictEqual(take("a"), 100)
    advance(60)
    assert.strictEqual(take("a"), 40)
    advance(40)
    assert.strictEqual(take("a"), 0)
    assert.strictEqual(take("a"), 100)
  })

  it("callers are independent", () => {
    const { take } = limiter({ rate: 1, burst: 1 })
    assert.strictEqual(take("noisy"), 0)
    assert.isAbove(take("noisy"), 0)
    assert.strictEqual(take("quiet"), 0)
  })

  it("rate 0 is no limit at all", () => {
    assert.isUndefined(RateLimit.make(RateLimit.off, { limit: "test" }))
  })

  it("a caller idle long enough to be full again is forgotten, and behaves as new", () => {
    const { advance, take } = limiter({ rate: 100, burst: 2 }, 3)
    for (const key of ["a", "b", "c"]) take(key)
    // At the bound: the oldest goes to make room (a, which then starts full again).
    take("d")
    assert.deepStrictEqual([take("a"), take("a")], [0, 0])
    assert.isAbove(take("a"), 0)
    // Idle for burst/rate: every bucket is dropped at the next new caller, none is refused for it.
    advance(20)
    assert.strictEqual(take("e"), 0)
    for (const key of ["b", "c", "d"]) assert.deepStrictEqual([take(key), take(key)], [0, 0], key)
  })

  it("at the bound, the oldest tenth of the callers goes at once; the others keep what they spent", () => {
    const { take } = limiter({ rate: 1, burst: 2 }, 20)
    for (let i = 0; i < 20; i++) take(`c${i}`)
    take("newcomer")
    // c2 kept its bucket: one call left of its burst, then refused.
    assert.strictEqual(take("c2"), 0)
    assert.isAbove(take("c2"), 0)
    // c1 went with c0, the first tenth: it starts again with a full burst of 2.
    assert.deepStrictEqual([take("c1"), take("c1")], [0, 0])
  })

  it("a caller is keyed by its address alone, the same from grpc-js's peer (address:port, IPv6 unbracketed) and from Node's remoteAddress", () => {
    for (
      const [peer, key] of [
        ["127.0.0.1:50312", "127.0.0.1"],
        ["127.0.0.1", "127.0.0.1"],
        ["::ffff:127.0.0.1:50312", "127.0.0.1"],
        ["::1:50312", "::1"],
        ["2001:db8::7:443", "2001:db8::7"],
        ["[2001:db8::7]:443", "2001:db8::7"]
      ]
    ) {
      assert.strictEqual(RateLimit.fromGrpcPeer(peer!), key, peer)
    }
    for (const [address, key] of [["127.0.0.1", "127.0.0.1"], ["::ffff:127.0.0.1", "127.0.0.1"], ["::1", "::1"]]) {
      assert.strictEqual(RateLimit.fromRemoteAddress(address!), key, address)
    }
  })

  it.scoped("over real sockets: two connections of one caller, over IPv4, IPv6 and a dual-stack listener, give one key, whether grpc-js or Node reports them", () =>
    Effect.gen(function*() {
      const peers: Array<string> = []
      const server = new grpc.Server()
      server.addService(ping, {
        ping: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          peers.push(call.getPeer())
          callback(null, Buffer.alloc(0))
        }
      })
      const port = yield* Effect.async<number, Error>((resume) =>
        server.bindAsync(
          "[::]:0",
          grpc.ServerCredentials.createInsecure(),
          (error, bound) => resume(error === null ? Effect.succeed(bound) : Effect.fail(error))
        )
      )
      yield* Effect.addFinalizer(() => Effect.sync(() => server.forceShutdown()))
      const Client = grpc.makeGenericClientConstructor(ping, "Ping")
      const callFrom = (host: string) =>
        Effect.acquireUseRelease(
          Effect.sync(() => new Client(`${host}:${port}`, grpc.credentials.createInsecure())),
          (client) =>
            Effect.async<void, Error>((resume) => {
              ;(client as unknown as { ping: (r: Buffer, cb: (e: Error | null) => void) => void }).ping(
                Buffer.alloc(0),
                (error) => resume(error === null ? Effect.void : Effect.fail(error))
              )
            }),
          (client) => Effect.sync(() => client.close())
        )
      for (const host of ["127.0.0.1", "127.0.0.1", "[::1]", "[::1]"]) yield* callFrom(host)
      assert.deepStrictEqual(
        peers.map(RateLimit.fromGrpcPeer),
        ["127.0.0.1", "127.0.0.1", "::1", "::1"],
        peers.join(", ")
      )
      // Two connections: two ports, one key.
      assert.notStrictEqual(peers[0], peers[1])

      const remote = yield* Effect.async<string, Error>((resume) => {
        const listener = net.createServer((socket) => {
          resume(Effect.succeed(socket.remoteAddress ?? ""))
          socket.destroy()
          listener.close()
        }).listen(0, "::", () => {
          net.connect((listener.address() as net.AddressInfo).port, "127.0.0.1").on("error", () => {})
        })
      })
      assert.strictEqual(RateLimit.fromRemoteAddress(remote), "127.0.0.1", remote)
    }))
})
