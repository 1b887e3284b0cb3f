/** Ports for servers under test on a shared machine, where every well-known port may be taken. */
import { Effect, type Scope } from "effect"
import { createServer, type Server } from "node:net"

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

/** A loopback port another listener holds for as long as the scope is open: for a test of a port in use. */
export const held: Effect.Effect<number, never, Scope.Scope> = Effect.acquireRelease(
  Effect.async<Server>((resume) => {
    const server = createServer().listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
).pipe(Effect.map((server) => {
  const address = server.address()
  return typeof address === "object" && address !== null ? address.port : 0
}))
