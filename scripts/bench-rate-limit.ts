/**
 * What a rate limit adds to each gateway call: taking from a caller's token
 * bucket, keyed by its peer address as grpc-js reports it, for 50 callers in
 * turn (the bucket never runs dry here, as under a limit no caller reaches).
 * Prints nanoseconds per call; asserts nothing.
 *
 *   npm run bench:rate-limit
 */
import * as RateLimit from "@movieapp/platform/RateLimit"

const take = RateLimit.make({ rate: 1_000_000_000, burst: 1_000_000_000 }, { limit: "bench" })!
const peers = Array.from({ length: 50 }, (_, i) => `127.0.0.1:${50_000 + i}`)
const calls = 5_000_000
let refused = 0
for (let round = 1; round <= 3; round++) {
  const started = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) refused += take(RateLimit.peerAddress(peers[i % peers.length]!)) > 0 ? 1 : 0
  const ns = Number(process.hrtime.bigint() - started) / calls
  console.log(`round ${round}: ${ns.toFixed(0)} ns per call (peer address and bucket), ${refused} refused`)
}
