/**
 * What a rate limit adds to each gateway call: taking from a caller's token
 * bucket, keyed by its address from grpc-js's peer string, for 50 callers in
 * turn (the bucket never runs dry here, as under a limit no caller reaches);
 * then a flood of callers never seen before while the limiter holds its
 * 100,000 callers, every one still active (each new caller evicts the oldest).
 * Prints nanoseconds per call; asserts nothing.
 *
 *   npm run bench:rate-limit
 */
import * as RateLimit from "@movieapp/platform/RateLimit"

const unlimited = { rate: 1_000_000_000, burst: 1_000_000_000 }

const measure = (what: string, calls: number, call: (i: number) => number) => {
  for (let round = 1; round <= 3; round++) {
    let refused = 0
    const started = process.hrtime.bigint()
    for (let i = 0; i < calls; i++) refused += call(i) > 0 ? 1 : 0
    const ns = Number(process.hrtime.bigint() - started) / calls
    console.log(`${what}, round ${round}: ${ns.toFixed(0)} ns per call, ${refused} refused`)
  }
}

const known = RateLimit.make(unlimited, { limit: "bench" })!
const peers = Array.from({ length: 50 }, (_, i) => `127.0.${i}.1:${50_000 + i}`)
measure(
  "50 callers in turn (peer address and bucket)",
  5_000_000,
  (i) => known(RateLimit.fromGrpcPeer(peers[i % peers.length]!))
)

const full = RateLimit.make(unlimited, { limit: "bench" })!
for (let i = 0; i < 100_000; i++) full(`caller-${i}`)
let next = 100_000
measure("a new caller each call, 100,000 active callers held", 200_000, () => full(`caller-${next++}`))
