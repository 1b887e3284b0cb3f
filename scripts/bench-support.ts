/**
 * What the gateway benchmarks share (bench-gateway.ts, bench-catalogue.ts):
 * processes started and stopped, gRPC health polled, ghz run with the CPU each
 * server process spent per call, and the figures' formatting.
 */
import * as grpc from "@grpc/grpc-js"
import { METADATA_WRITE_SCOPE } from "@movieapp/contracts/Auth"
import * as DevelopmentTokens from "@movieapp/platform/DevelopmentTokens"
import * as GrpcHealth from "@movieapp/platform/GrpcHealth"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as ProcessStats from "@movieapp/testkit/ProcessStats"
import { Effect } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { generateKeyPairSync } from "node:crypto"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { homedir, loadavg, tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { catalog } from "./bench-gateway-ceiling.js"

export const repo = resolve(fileURLToPath(new URL("..", import.meta.url)))

// ---------------------------------------------------------------------------------
// Options: `--name value` on the command line

const args = process.argv.slice(2)
export const option = (name: string): string | undefined => {
  const index = args.indexOf(`--${name}`)
  return index === -1 ? undefined : args[index + 1]
}
export const numberOption = (name: string, fallback: number) => {
  const text = option(name)
  const value = text === undefined ? fallback : Number(text)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} expects a positive number, got ${text}`)
  return value
}

// ---------------------------------------------------------------------------------
// Processes

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms))

export interface Running {
  readonly name: string
  readonly child: ChildProcess
  readonly pid: number
  readonly output: () => string
  readonly stop: () => Promise<void>
}

export const launch = (name: string, command: ReadonlyArray<string>, env: Record<string, string>): Running => {
  const child = spawn(command[0]!, command.slice(1), { cwd: repo, env, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-20_000)
  }
  child.stdout!.on("data", keep)
  child.stderr!.on("data", keep)
  const exited = new Promise<void>((done) => child.once("exit", () => done()))
  return {
    name,
    child,
    pid: child.pid!,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill("SIGTERM")
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000)
      await exited
      clearTimeout(killer)
    }
  }
}

/**
 * The gRPC ports that serve TLS (`bench:gateway --tls`), and the CA their clients
 * trust; every client here (health polls, seeding, ghz) connects accordingly.
 */
export const secure: { readonly ports: Set<number>; ca: { readonly file: string; readonly pem: Buffer } | undefined } =
  {
    ports: new Set(),
    ca: undefined
  }

const trusted = (port: number) => secure.ports.has(port) ? secure.ca : undefined

/**
 * A gRPC client of the server at `port`: TLS trusting the run's CA where it serves
 * TLS, naming the server localhost (its certificate's name, and no IP address as
 * SNI); plaintext elsewhere.
 */
export const clientOf = <C>(
  Client: new(address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => C,
  port: number
): C => {
  const ca = trusted(port)
  return ca === undefined
    ? new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
    : new Client(`127.0.0.1:${port}`, grpc.credentials.createSsl(ca.pem), {
      "grpc.ssl_target_name_override": "localhost"
    })
}

/** Whether the gRPC server at `port` answers grpc.health.v1 Check("") with SERVING; false on any failure. */
export const serving = (port: number) => {
  const ca = trusted(port)
  return Effect.runPromise(
    GrpcHealth.check(`127.0.0.1:${port}`, "", {
      deadlineMs: 1_000,
      ...(ca === undefined ? {} : { credentials: grpc.credentials.createSsl(ca.pem), serverName: "localhost" })
    }).pipe(Effect.match({ onFailure: () => false, onSuccess: (status) => status === "SERVING" }))
  )
}

/** How often start-up polls health: the start-up figures are late by at most this, plus one check. */
export const POLL_MS = 2

/** Polls `port` until SERVING; milliseconds since `since`. */
export const untilServing = async (
  running: Running,
  port: number,
  since: bigint,
  timeoutMs = 60_000
): Promise<number> => {
  for (;;) {
    if (await serving(port)) return Number(process.hrtime.bigint() - since) / 1e6
    if (running.child.exitCode !== null) throw new Error(`${running.name} exited:\n${running.output()}`)
    if (Number(process.hrtime.bigint() - since) / 1e6 > timeoutMs) {
      throw new Error(`${running.name} not SERVING within ${timeoutMs} ms:\n${running.output()}`)
    }
    await sleep(POLL_MS)
  }
}

// ---------------------------------------------------------------------------------
// Seeding, through the public gRPC API

export const unary = <Req, Res>(
  client: grpc.Client,
  method: (
    request: Req,
    metadata: grpc.Metadata,
    callback: (error: grpc.ServiceError | null, response: Res) => void
  ) => unknown,
  request: Req,
  metadata: grpc.Metadata = new grpc.Metadata()
) =>
  new Promise<Res>((done, fail) =>
    method.call(client, request, metadata, (error, response) => error ? fail(error) : done(response))
  )

/**
 * The services run as deployed: writes (the seeding) carry tokens signed with a
 * key made for this run, and rate limits are on, at a rate no caller here
 * reaches, so that their cost on the path of every call is in the figures.
 */
const signingKey = generateKeyPairSync("ec", { namedCurve: "P-256" })
const keyDirectory = mkdtempSync(join(tmpdir(), "movieapp-bench-auth-"))
writeFileSync(join(keyDirectory, "public.pem"), signingKey.publicKey.export({ type: "spki", format: "pem" }))
process.once("exit", () => rmSync(keyDirectory, { recursive: true, force: true }))

/** The settings every benchmarked service gets for that: its key, issuer and audience, and its limit. */
export const authEnv: Readonly<Record<string, string>> = {
  AUTH_PUBLIC_KEY_FILE: join(keyDirectory, "public.pem"),
  AUTH_ISSUER: DevelopmentTokens.ISSUER,
  AUTH_AUDIENCE: DevelopmentTokens.AUDIENCE,
  RATE_LIMIT_RATE: "1000000"
}

/** Call metadata with a token for `sub` (holding `scope`), signed with the run's key. */
const bearer = async (sub: string, scope?: string) => {
  const metadata = new grpc.Metadata()
  metadata.set(
    "authorization",
    `Bearer ${await DevelopmentTokens.sign(signingKey.privateKey, "ES256", { sub, scope, expiresIn: "1 hour" })}`
  )
  return metadata
}

const inParallel = async <A>(items: ReadonlyArray<A>, width: number, run: (item: A) => Promise<unknown>) => {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await run(items[next++]!)
  }))
}

/** The catalog of `movies` movies (bench-gateway-ceiling's), put through the services' gRPC APIs. */
export const seed = async (metadataGrpc: number, ratingGrpc: number, movies: number) => {
  const metadata = clientOf(v1Metadata.MetadataServiceClient, metadataGrpc)
  const rating = clientOf(v1Rating.RatingServiceClient, ratingGrpc)
  const movieList = catalog(movies)
  const editor = await bearer("editor", METADATA_WRITE_SCOPE)
  await inParallel(
    movieList,
    16,
    (movie) => unary(metadata, metadata.putMetadata, { metadata: movie.metadata }, editor)
  )
  const ratings = movieList.flatMap((movie) =>
    movie.ratings.map((r) => ({
      recordId: movie.metadata.id,
      recordType: "movie",
      userId: r.userId,
      ratingValue: r.value
    }))
  )
  const users = new Map<string, grpc.Metadata>()
  for (const { userId } of ratings) if (!users.has(userId)) users.set(userId, await bearer(userId))
  await inParallel(ratings, 16, (request) => unary(rating, rating.putRating, request, users.get(request.userId)!))
  metadata.close()
  rating.close()
}

// ---------------------------------------------------------------------------------
// Load: ghz

/** ghz: GHZ, ~/go/bin or PATH; undefined when none is installed. */
export const ghz = [
  process.env.GHZ,
  join(homedir(), "go/bin/ghz"),
  ...(process.env.PATH ?? "").split(":").map((dir) => join(dir, "ghz"))
]
  .find((candidate) => candidate !== undefined && candidate !== "" && existsSync(candidate))

interface GhzReport {
  readonly count: number
  readonly rps: number
  readonly latencyDistribution: ReadonlyArray<{ readonly percentage: number; readonly latency: number }> | null
  readonly statusCodeDistribution: Readonly<Record<string, number>>
  readonly errorDistribution?: Readonly<Record<string, number>> | null
}

export interface Load {
  readonly calls: number
  readonly rps: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
  readonly errorKinds: ReadonlyArray<string>
  /** CPU per call of each measured process, in milliseconds. */
  readonly cpuMs: ReadonlyArray<number>
  /** CPU per call of ghz itself, in milliseconds (the machine's other consumer). */
  readonly ghzCpuMs: number
}

/** One ghz run: `call` (from `proto`) with the items of `dataFile` in turn, for `seconds` or `total` calls. */
export interface GhzRun {
  readonly proto: string
  readonly call: string
  readonly dataFile: string
  readonly port: number
  /** The server processes whose CPU per call is measured, each with the processes below it. */
  readonly pids: ReadonlyArray<number>
  readonly seconds: number
  readonly total?: number | undefined
  readonly concurrency: number
  readonly connections: number
}

export const runGhz = async (
  { call, concurrency, connections, dataFile, pids, port, proto, seconds, total }: GhzRun
): Promise<Load> => {
  const cpu = () => pids.map((pid) => ProcessStats.treeCpuMillis(pid) ?? NaN)
  const before = cpu()
  const ghzBefore = ProcessStats.exitedChildrenCpuMillis() ?? NaN
  const output = await new Promise<string>((done, fail) =>
    execFile(
      ghz!,
      [
        ...(trusted(port) === undefined ? ["--insecure"] : ["--cacert", trusted(port)!.file]),
        "--proto",
        join(repo, proto),
        "--import-paths",
        join(repo, "proto"),
        "--call",
        call,
        "--data-file",
        dataFile,
        // At the end of a duration, calls in flight finish and count (ghz would otherwise cancel them as errors).
        ...(total === undefined
          ? ["--duration", `${seconds}s`, "--total", "0", "--duration-stop", "wait"]
          : ["--total", String(total)]),
        "--concurrency",
        String(concurrency),
        "--connections",
        String(connections),
        "--format",
        "json",
        `127.0.0.1:${port}`
      ],
      { maxBuffer: 256 * 1024 * 1024 },
      (error, stdout, stderr) => error ? fail(new Error(`${error.message}\n${stderr}`)) : done(stdout)
    )
  )
  const after = cpu()
  const ghzAfter = ProcessStats.exitedChildrenCpuMillis() ?? NaN
  const report = JSON.parse(output) as GhzReport
  const errors = Object.entries(report.statusCodeDistribution).filter(([code]) => code !== "OK").reduce(
    (n, [, count]) => n + count,
    0
  )
  const latency = (p: number) => (report.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6
  return {
    calls: report.count,
    rps: report.rps,
    p50Ms: latency(50),
    p99Ms: latency(99),
    errors,
    errorKinds: Object.keys(report.errorDistribution ?? {}).slice(0, 3),
    cpuMs: after.map((ms, i) => (ms - before[i]!) / report.count),
    ghzCpuMs: (ghzAfter - ghzBefore) / report.count
  }
}

// ---------------------------------------------------------------------------------
// Figures

export const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
export const sum = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0)
export const fixed = (value: number, digits: number, width: number) =>
  (Number.isFinite(value) ? value.toFixed(digits) : "n/a").padStart(width)
export const verdict = (ok: boolean) => (ok ? "met" : "NOT met")
export const loadAverage = () => loadavg().map((n) => n.toFixed(1)).join(" ")
