/**
 * A service's `main.ts` run as a real child process (tsx, source condition), with
 * its JSON log lines collected so tests can wait for what it says, signal it, and
 * see how it exits; what it writes to stderr is collected too, not shown. A
 * process still running when the scope closes is killed.
 */
import { Deferred, type Duration, Effect, type Scope } from "effect"
import { spawn } from "node:child_process"
import { resolve } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const repo = resolve(fileURLToPath(new URL("../../..", import.meta.url)))

export interface LogLine {
  readonly message: unknown
  readonly level?: string
  readonly annotations?: Record<string, unknown>
  readonly [key: string]: unknown
}

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface ServiceProcess {
  readonly pid: number
  /** Every log line so far (stdout). */
  readonly logs: () => ReadonlyArray<LogLine>
  /** Every line written to stderr so far. */
  readonly stderr: () => ReadonlyArray<string>
  /** The first log line (past or future) that satisfies `predicate`; fails if the process exits first. */
  readonly awaitLog: (predicate: (line: LogLine) => boolean) => Effect.Effect<LogLine, Error>
  readonly kill: (signal: NodeJS.Signals) => Effect.Effect<void>
  readonly exited: Effect.Effect<Exit>
  /** Runs `effect`, but dies (with the last log lines) if the process exits first. */
  readonly whileRunning: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export interface StartOptions {
  /**
   * A file the process sees as its /etc/resolv.conf, so that its system resolver
   * asks a test's DNS server (`DnsServer.resolvConf`). The process then runs in a
   * mount namespace of its own (`unshare`; needs root).
   */
  readonly resolvConf?: string
}

/** Starts `main` (a path relative to the repository root) with `env` added to this process's environment. */
export const start = (
  main: string,
  env: Record<string, string>,
  args: ReadonlyArray<string> = [],
  options: StartOptions = {}
): Effect.Effect<ServiceProcess, never, Scope.Scope> =>
  Effect.gen(function*() {
    const exit = yield* Deferred.make<Exit>()
    const lines: Array<LogLine> = []
    const errorLines: Array<string> = []
    const waiters = new Set<
      { readonly predicate: (line: LogLine) => boolean; readonly found: Deferred.Deferred<LogLine, Error> }
    >()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(...command([process.execPath, "--conditions=source", "--import", "tsx", main, ...args], options), {
          cwd: repo,
          env: { ...process.env, ...env },
          stdio: ["ignore", "pipe", "pipe"]
        })
      ),
      (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
    )
    createInterface({ input: child.stdout! }).on("line", (text) => {
      let line: LogLine
      try {
        line = JSON.parse(text)
      } catch {
        line = { message: text }
      }
      lines.push(line)
      for (const waiter of waiters) {
        if (waiter.predicate(line)) {
          waiters.delete(waiter)
          Deferred.unsafeDone(waiter.found, Effect.succeed(line))
        }
      }
    })
    createInterface({ input: child.stderr! }).on("line", (text) => void errorLines.push(text))
    child.on("exit", (code, signal) => {
      Deferred.unsafeDone(exit, Effect.succeed({ code, signal }))
      for (const waiter of waiters) {
        Deferred.unsafeDone(
          waiter.found,
          Effect.fail(new Error(`${main} exited (code ${code}, signal ${signal}) before the awaited log line`))
        )
      }
      waiters.clear()
    })
    return {
      pid: child.pid!,
      logs: () => lines,
      stderr: () => errorLines,
      awaitLog: (predicate) =>
        Effect.suspend(() => {
          const seen = lines.find(predicate)
          if (seen) return Effect.succeed(seen)
          if (child.exitCode !== null || child.signalCode !== null) return Effect.fail(new Error(`${main} has exited`))
          return Effect.flatMap(Deferred.make<LogLine, Error>(), (found) => {
            waiters.add({ predicate, found })
            return Deferred.await(found)
          })
        }),
      kill: (signal) => Effect.sync(() => void child.kill(signal)),
      exited: Deferred.await(exit),
      whileRunning: (effect) =>
        Effect.raceFirst(
          effect,
          Deferred.await(exit).pipe(Effect.flatMap((e) =>
            Effect.dieMessage(
              `${main} exited (code ${e.code}, signal ${e.signal}); last logs:\n${
                [...lines.slice(-10).map((line) => JSON.stringify(line)), ...errorLines.slice(-10)].join("\n")
              }`
            )
          ))
        )
    } satisfies ServiceProcess
  })

const command = (argv: ReadonlyArray<string>, options: StartOptions): [string, Array<string>] =>
  options.resolvConf === undefined
    ? [argv[0]!, argv.slice(1)]
    // The bind mount is private to the new namespace: nothing else on the machine sees it.
    : ["unshare", [
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"",
      options.resolvConf,
      ...argv
    ]]

/** A service's process that has registered in discovery, and where: the host and port it registered (Effect RPC, or HTTP for the gateway), and its HTTP port. */
export interface RegisteredService extends ServiceProcess {
  readonly host: string
  readonly port: number
  readonly httpPort: number
}

/**
 * Starts `packages/<service>/src/main.ts` and waits until it has registered in
 * discovery (its "registered" log line), the way it runs in production; with
 * `DISCOVERY=dns`, until it serves and says that the platform lists it.
 */
export const startService = (
  service: "metadata" | "rating" | "movie",
  env: Record<string, string>,
  options: StartOptions & { readonly timeout?: Duration.DurationInput } = {}
): Effect.Effect<RegisteredService, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const started = yield* start(`packages/${service}/src/main.ts`, env, [], options)
    const registered = yield* started.awaitLog((line) =>
      line.message === "registered" || line.message === "not registering: the platform lists instances"
    ).pipe(
      Effect.timeoutFail({
        duration: options.timeout ?? "60 seconds",
        onTimeout: () => new Error(`${service} did not register in time`)
      })
    )
    const listening = yield* started.awaitLog((line) => line.message === "listening")
    const [host, port] = String(registered.annotations?.address).split(/:(?=\d+$)/)
    return { ...started, host: host!, port: Number(port), httpPort: Number(listening.annotations?.["http.port"]) }
  })
