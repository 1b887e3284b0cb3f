/**
 * A real DNS server for tests: dnsmasq (Debian's dnsmasq-base, which
 * `scripts/dnsmasq.sh` installs), started per suite on a loopback address of its
 * own, answering A and AAAA queries from the records a test sets. The records are
 * hosts files that dnsmasq re-reads as they change (inotify). It knows every
 * name: one without records answers NXDOMAIN, and nothing is forwarded anywhere.
 *
 * Suites that need it follow the rule of RequiredServer: without the program they
 * are skipped locally with a warning, and fail in CI.
 */
import { Effect, type Scope } from "effect"
import { spawn } from "node:child_process"
import { promises as dns } from "node:dns"
import { existsSync, promises as fs } from "node:fs"
import { isIP } from "node:net"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import * as Poll from "./Poll.js"

const program = (): string | undefined =>
  [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin"].map((dir) => join(dir, "dnsmasq")).find((path) =>
    existsSync(path)
  )

/** Whether suites needing dnsmasq should run (see the module's rule). */
export const available = (): boolean => {
  if (program() !== undefined) return true
  const message = "dnsmasq is not installed (install it with bash scripts/dnsmasq.sh)"
  if (process.env.CI) throw new Error(`${message}; CI requires it`)
  console.warn(`${message}: skipping DNS suites`)
  return false
}

/** Whether this process may bind port 53 and mount a file over /etc/resolv.conf in a namespace of its own. */
export const isRoot = (): boolean => process.getuid?.() === 0

export interface DnsServer {
  /** The loopback address it listens on. */
  readonly host: string
  readonly port: number
  /** `host:port`, as `dns.Resolver.setServers` takes it. */
  readonly server: string
  /**
   * Makes `name` answer exactly `addresses` (IPv4 ones as A, IPv6 ones as AAAA
   * records; none: NXDOMAIN), and returns once the server answers so.
   */
  readonly set: (name: string, addresses: ReadonlyArray<string>) => Effect.Effect<void>
  /** Every address the server gives for `name` (A and AAAA), sorted; none for NXDOMAIN. */
  readonly resolve: (name: string) => Promise<ReadonlyArray<string>>
  /** Stops answering (the process is suspended, its socket stays bound) until `resume`. */
  readonly suspend: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
  /** A resolv.conf naming this server (port 53 only: resolv.conf has no port), with `search` domains. */
  readonly resolvConf: (search: ReadonlyArray<string>) => Effect.Effect<string>
}

const NO_ADDRESS = new Set(["ENOTFOUND", "ENODATA"])

/**
 * Runs its arguments in the background, prints their process id, kills them
 * (SIGKILL, which also ends a suspended process) once stdin closes, and exits
 * when they do. An asynchronous list's stdin is /dev/null, hence the copy on fd 3.
 */
const WATCHDOG =
  "exec 3<&0; \"$@\" & child=$!; echo \"$child\"; (read _ <&3; kill -9 \"$child\" 2>/dev/null) & wait \"$child\""

/** Asks `server` (`host:port`) for the A and AAAA records of `name`, as `dns.lookup` with `all: true` answers. */
export const lookupAt = (server: string, options: { readonly timeoutMillis?: number } = {}) => {
  const resolver = new dns.Resolver({ timeout: options.timeoutMillis ?? 500, tries: 1 })
  resolver.setServers([server])
  const records = (query: Promise<ReadonlyArray<string>>) =>
    query.catch((error: NodeJS.ErrnoException) => {
      if (NO_ADDRESS.has(error.code ?? "")) return []
      throw error
    })
  return async (name: string): Promise<ReadonlyArray<{ readonly address: string; readonly family: number }>> => {
    const [v4, v6] = await Promise.all([records(resolver.resolve4(name)), records(resolver.resolve6(name))])
    const found = [...v4.map((address) => ({ address, family: 4 })), ...v6.map((address) => ({ address, family: 6 }))]
    if (found.length === 0) {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: "ENOTFOUND", hostname: name })
    }
    return found
  }
}

/**
 * Starts dnsmasq on a loopback address of its own (127.53.x.y), on port 53 when
 * this process may bind it (`isRoot`), otherwise on a high port; stopped when the
 * scope closes.
 */
export const start = (options: { readonly port?: number } = {}): Effect.Effect<DnsServer, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const bin = program()
    if (bin === undefined) return yield* Effect.fail(new Error("dnsmasq is not installed (bash scripts/dnsmasq.sh)"))
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => fs.mkdtemp(join(tmpdir(), "dnsmasq-"))),
      (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
    )
    const hosts = join(dir, "hosts")
    const staging = join(dir, "staging")
    yield* Effect.promise(() => Promise.all([fs.mkdir(hosts), fs.mkdir(staging)]))

    // A random address (and port, unless root) so that suites of several worktrees never meet.
    const launch = Effect.gen(function*() {
      const host = `127.53.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`
      const port = options.port ?? (isRoot() ? 53 : 20_000 + Math.floor(Math.random() * 40_000))
      const output: Array<string> = []
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          // Through a small shell that kills dnsmasq as soon as its stdin closes: when the scope
          // closes, and also when this process dies without closing it (a killed test worker).
          spawn("sh", [
            "-c",
            WATCHDOG,
            "sh",
            bin,
            "--keep-in-foreground",
            "--log-facility=-",
            "--conf-file=/dev/null",
            "--pid-file=",
            ...(isRoot() ? ["--user=root"] : []),
            `--listen-address=${host}`,
            "--bind-interfaces",
            `--port=${port}`,
            // Answers only from the hosts files: every other name is NXDOMAIN, never forwarded.
            "--no-resolv",
            "--no-hosts",
            "--local=/#/",
            `--hostsdir=${hosts}`,
            "--no-negcache"
          ], { stdio: ["pipe", "pipe", "pipe"] })
        ),
        (child) =>
          Effect.async<void>((resume) => {
            if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
            child.once("exit", () => resume(Effect.void))
            child.stdin!.end()
          })
      )
      child.stderr!.on("data", (chunk: Buffer) => output.push(chunk.toString("utf8")))
      // The shell's first line: dnsmasq's own process id, for suspend and resume.
      const pid = yield* Effect.async<number>((resume) => {
        child.stdout!.once(
          "data",
          (chunk: Buffer) => resume(Effect.succeed(Number.parseInt(chunk.toString("utf8"), 10)))
        )
      })
      const server = `${host}:${port}`
      const lookup = lookupAt(server, { timeoutMillis: 200 })
      // Ready once it answers (NXDOMAIN for a name it does not know is an answer), or gone
      // (the address and port were taken: another attempt picks others).
      yield* Poll.until(
        Effect.tryPromise(() =>
          lookup("ready.invalid").then(() => true, (error: NodeJS.ErrnoException) => error.code === "ENOTFOUND")
        ),
        (ready) => ready || child.exitCode !== null,
        { what: `dnsmasq answering at ${server}`, timeout: "10 seconds", interval: "20 millis" }
      )
      if (child.exitCode !== null) return yield* Effect.fail(new Error(`dnsmasq exited: ${output.join("")}`))
      return { host, port, server, pid, lookup }
    })
    const { host, port, server, pid, lookup } = yield* launch.pipe(Effect.retry({ times: 4 }))

    const resolve = async (name: string) => {
      try {
        return (await lookup(name)).map((a) => a.address).sort()
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOTFOUND") return []
        throw error
      }
    }
    const fileOf = (name: string) => `${name.replace(/[^a-zA-Z0-9.-]/g, "_")}.hosts`

    const set = (name: string, addresses: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        for (const address of addresses) {
          if (isIP(address) === 0) return yield* Effect.dieMessage(`not an address: ${address}`)
        }
        const file = fileOf(name)
        // Written aside, then renamed in, so dnsmasq never reads half a file.
        yield* Effect.promise(() => fs.writeFile(join(staging, file), addresses.map((a) => `${a} ${name}\n`).join("")))
        yield* Effect.promise(() => fs.rename(join(staging, file), join(hosts, file)))
        const expected = JSON.stringify([...new Set(addresses)].sort())
        yield* Poll.until(Effect.tryPromise(() => resolve(name)), (got) => JSON.stringify(got) === expected, {
          what: `${name} to answer ${expected}`,
          timeout: "10 seconds",
          interval: "10 millis"
        })
      })

    return {
      host,
      port,
      server,
      set,
      resolve,
      suspend: Effect.sync(() => process.kill(pid, "SIGSTOP")),
      resume: Effect.sync(() => process.kill(pid, "SIGCONT")),
      resolvConf: (search) =>
        Effect.gen(function*() {
          if (port !== 53) return yield* Effect.dieMessage("resolv.conf can only name a server on port 53")
          const path = join(dir, "resolv.conf")
          yield* Effect.promise(() =>
            fs.writeFile(path, `nameserver ${host}\nsearch ${search.join(" ")}\noptions ndots:5 timeout:1 attempts:2\n`)
          )
          return path
        })
    } satisfies DnsServer
  })
