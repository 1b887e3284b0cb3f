/**
 * A TCP proxy a test can cut and restore: a real network fault between a service
 * and its database (open connections are reset, new ones refused) without
 * stopping the database other suites use.
 */
import { Effect } from "effect"
import { createConnection, createServer, type Socket } from "node:net"

export interface TcpProxy {
  readonly port: number
  /** Resets every open connection and refuses new ones until `restore`. */
  readonly cut: Effect.Effect<void>
  readonly restore: Effect.Effect<void>
  /** Connections accepted so far, refused ones included: how often a client tried. */
  readonly connections: Effect.Effect<number>
}

export const make = (target: { readonly host: string; readonly port: number }) =>
  Effect.acquireRelease(
    Effect.async<{ proxy: TcpProxy; close: () => void }>((resume) => {
      const sockets = new Set<Socket>()
      let open = true
      let connections = 0
      const server = createServer((client) => {
        connections += 1
        if (!open) return void client.resetAndDestroy()
        const upstream = createConnection(target.port, target.host)
        for (const socket of [client, upstream]) {
          sockets.add(socket)
          socket.on("close", () => sockets.delete(socket))
          socket.on("error", () => {
            client.destroy()
            upstream.destroy()
          })
        }
        client.pipe(upstream).pipe(client)
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({
          proxy: {
            port,
            cut: Effect.sync(() => {
              open = false
              for (const socket of sockets) socket.resetAndDestroy()
            }),
            restore: Effect.sync(() => {
              open = true
            }),
            connections: Effect.sync(() => connections)
          },
          close: () => {
            for (const socket of sockets) socket.destroy()
            server.close()
          }
        }))
      })
    }),
    ({ close }) => Effect.sync(close)
  ).pipe(Effect.map(({ proxy }) => proxy))
