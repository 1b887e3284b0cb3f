/**
 * A service running as its own process, the way it runs in production (its
 * `main.ts`, configured by environment variables), for tests that need real
 * processes: several instances of a service, a process killed abruptly.
 */
import { Deferred, type Duration, Effect, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { resolve } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const repo = resolve(fileURLToPath(new URL("../../..", import.meta.url)))

export interface LogLine {
  readonly message: string
  readonly logLevel?: string
  readonly annotations: Record<string, unknown>
}

export interface ServiceProcess {
  readonly pid: number
  /** Where it registered in discovery: host and HTTP (Effect RPC) port. */
  readonly host: string
  readonly port: number
  /** Its log lines so far. */
  readonly logs: Effect.Effect<ReadonlyArray<LogLine>>
  readonly kill: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** Completes with the exit code (null when killed by a signal) once the process has exited. */
  readonly exited: Effect.Effect<number | null>
}

/**
 * Starts `packages/<service>/src/main.ts` with `env` over the test's own
 * environment, and waits until it has registered in discovery (its "registered"
 * log line). The process is killed when the scope closes, if still running.
 */
export const start = (
  service: "metadata" | "rating" | "movie",
  env: Record<string, string>,
  options: { readonly timeout?: Duration.DurationInput } = {}
): Effect.Effect<ServiceProcess, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const registered = yield* Deferred.make<{ readonly host: string; readonly port: number }, Error>()
    const exit = yield* Deferred.make<number | null>()
    const logs: Array<LogLine> = []
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, ["--conditions=source", "--import", "tsx", `packages/${service}/src/main.ts`], {
          cwd: repo,
          env: { ...process.env, ...env },
          stdio: ["ignore", "pipe", "inherit"]
        })),
      (child: ChildProcess) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
    )
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let entry: LogLine
      try {
        entry = JSON.parse(line)
      } catch {
        return
      }
      logs.push(entry)
      if (entry.message === "registered") {
        const [host, port] = String(entry.annotations.address).split(/:(?=\d+$)/)
        Deferred.unsafeDone(registered, Effect.succeed({ host: host!, port: Number(port) }))
      }
    })
    child.on("exit", (code) => {
      Deferred.unsafeDone(exit, Effect.succeed(code))
      Deferred.unsafeDone(registered, Effect.fail(new Error(`${service} exited (${code}) before registering: ${logs.map((l) => l.message).join(" | ")}`)))
    })
    const address = yield* Deferred.await(registered).pipe(
      Effect.timeoutFail({ duration: options.timeout ?? "60 seconds", onTimeout: () => new Error(`${service} did not register in time`) })
    )
    return {
      pid: child.pid!,
      ...address,
      logs: Effect.sync(() => [...logs]),
      kill: (signal) => Effect.sync(() => void child.kill(signal)),
      exited: Deferred.await(exit)
    }
  })
