/**
 * The rule for suites that need a real server (MariaDB, Kafka, a Docker engine):
 * they run when the server answers; without it they are skipped locally with a
 * warning, and fail in CI (CI=true), where a missing server must never pass for a
 * green run.
 */
import { Socket } from "node:net"

const reachable = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = new Socket()
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once("error", () => done(false))
    socket.connect(port, host, () => done(true))
  })

/** Whether the suites needing `server` should run (see the module's rule). */
export const available = async (server: {
  /** As in messages: "MariaDB", "Kafka". */
  readonly name: string
  readonly host: string
  readonly port: number
  /** How to start it, for the message. */
  readonly start: string
}): Promise<boolean> => {
  if (await reachable(server.host, server.port)) return true
  return required({
    name: server.name,
    problem: `is not reachable at ${server.host}:${server.port}`,
    start: server.start
  })
}

/**
 * The same rule for a server looked for in another way: true when `problem` is
 * undefined; else false with a warning, or an error in CI.
 */
export const required = (server: {
  readonly name: string
  /** Why the server cannot be used, as in "is not reachable at …"; undefined when it can. */
  readonly problem: string | undefined
  readonly start: string
}): boolean => {
  if (server.problem === undefined) return true
  const message = `${server.name} ${server.problem} (start it with ${server.start})`
  if (process.env.CI) throw new Error(`${message}; CI requires it`)
  console.warn(`${message}: skipping ${server.name} suites`)
  return false
}

/**
 * Says that the suites of a server never required (a real Consul agent, which no
 * package installs here) are skipped, and how to run them: no skip goes without
 * its reason.
 */
export const skipped = (suites: string, howToRun: string): void => console.info(`skipping ${suites}: ${howToRun}`)
