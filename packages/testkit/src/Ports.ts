/** Ports for servers under test on a shared machine, where every well-known port may be taken. */
import { Effect } from "effect"
import { createServer } from "node:net"

/**
 * A loopback port free at the moment of asking, for a server that must be told
 * its port up front (a container, a child process).
 */
export const free: Effect.Effect<number> = Effect.async<number>((resume) => {
  const probe = createServer().listen(0, "127.0.0.1", () => {
    const address = probe.address()
    probe.close(() => resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0)))
  })
})
