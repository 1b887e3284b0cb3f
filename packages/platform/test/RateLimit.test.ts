/** The token bucket on its own, on a clock the test moves: refill, burst, and memory that stays bounded. */
import { assert, describe, it } from "@effect/vitest"
import * as RateLimit from "../src/RateLimit.js"

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

  it("a caller is keyed by its address alone, the same from grpc-js's peer and from Node's remoteAddress", () => {
    for (
      const [reported, key] of [
        ["127.0.0.1:50312", "127.0.0.1"],
        ["127.0.0.1", "127.0.0.1"],
        ["::ffff:127.0.0.1", "127.0.0.1"],
        ["[::1]:50312", "::1"],
        ["::1", "::1"],
        ["[2001:db8::7]:443", "2001:db8::7"],
        ["2001:db8::7", "2001:db8::7"]
      ]
    ) {
      assert.strictEqual(RateLimit.peerAddress(reported!), key, reported)
    }
  })
})
