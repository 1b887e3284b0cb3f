/**
 * Gateway throughput with tracing off, at 10 % and at 100 % sampling, measured in
 * one run: the whole system (gateway, metadata, rating; memory storage) in a child
 * process per setting, the three side by side, loaded in turns with `ghz` over real
 * gRPC (GetMovieDetails of a rated movie, so every call crosses both Effect RPC
 * hops). Goal: 100 % sampling keeps at least 70 % of the untraced throughput
 * (medians over the rounds). Prints figures; asserts nothing.
 *
 * Spans go over OTLP/HTTP to a local sink in this process that answers 200 and
 * counts what it receives (a cheap stand-in for a collector: a real receiver's
 * own cost would be charged to this 2-core machine, not to the service).
 *
 * Needs ghz: `go install github.com/bojand/ghz/cmd/ghz@v0.121.0` (on PATH, in
 * ~/go/bin, or named by GHZ).
 *
 *   npm run bench:tracing [-- --requests 2000 --concurrency 16 --rounds 5]
 */
import * as ProcessStats from "@movieapp/testkit/ProcessStats"
import { execFile, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { createServer } from "node:http"
import { homedir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const args = process.argv.slice(2)
const option = (name: string, fallback: number) => {
  const index = args.indexOf(`--${name}`)
  return index === -1 ? fallback : Number(args[index + 1])
}

// ---------------------------------------------------------------------------------
// Child: the system under one tracing setting, until stdin closes

if (args[0] === "--serve") {
  const { NodeRuntime } = await import("@effect/platform-node")
  const Telemetry = await import("@movieapp/platform/Telemetry")
  const MetadataServer = await import("@movieapp/metadata/MetadataServer")
  const RatingServer = await import("@movieapp/rating/RatingServer")
  const MovieServer = await import("@movieapp/movie/MovieServer")
  const v1Metadata = await import("@movieapp/proto/gen/movieapp/v1/metadata")
  const v1Rating = await import("@movieapp/proto/gen/movieapp/v1/rating")
  const Grpc = await import("@movieapp/testkit/Grpc")
  const Tokens = await import("@movieapp/testkit/Tokens")
  const DevelopmentTokens = await import("@movieapp/platform/DevelopmentTokens")
  const { NodeFileSystem } = await import("@effect/platform-node")
  const System = await import("../packages/devstack/src/System.js")
  const { Effect, Layer, Logger, LogLevel, Option } = await import("effect")

  const [, endpoint, ratio] = args
  const tracing = endpoint === "off" ? undefined : { endpoint: Option.some(endpoint!), sampleRatio: Number(ratio) }
  const program = Effect.gen(function*() {
    const metadata = yield* Grpc.client(
      v1Metadata.MetadataServiceClient,
      `127.0.0.1:${(yield* MetadataServer.Ports).grpc}`
    )
    yield* Grpc.call(Grpc.method(metadata, "putMetadata"), {
      metadata: { id: "1", title: "Heat", description: "A heist.", director: "Michael Mann" }
    }, { metadata: yield* Tokens.editor })
    const rating = yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${(yield* RatingServer.Ports).grpc}`)
    yield* Grpc.call(Grpc.method(rating, "putRating"), {
      recordId: "1",
      recordType: "movie",
      userId: "u",
      ratingValue: 8
    }, { metadata: yield* Tokens.user("u") })
    console.log(JSON.stringify({ grpc: (yield* MovieServer.Ports).grpc }))
    // Stop (flushing spans) when the parent closes our stdin.
    yield* Effect.async<void>((resume) => {
      process.stdin.on("close", () => resume(Effect.void))
      process.stdin.resume()
    })
  }).pipe(
    Effect.scoped,
    Effect.provide(
      System.layer({
        host: "127.0.0.1",
        ...System.ephemeralPorts,
        ...(tracing === undefined ? {} : { tracing: (service: string) => Telemetry.layer(service, tracing) })
      }).pipe(Layer.provideMerge(DevelopmentTokens.layer), Layer.provide(NodeFileSystem.layer))
    ),
    Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )
  NodeRuntime.runMain(program, { disablePrettyLogger: true })
} else {
  await main()
}

// ---------------------------------------------------------------------------------
// Parent: sink, one child per setting, ghz

async function main() {
  const requests = option("requests", 2_000)
  const concurrency = option("concurrency", 16)
  const rounds = option("rounds", 5)
  const ghz = [process.env.GHZ, "ghz", join(homedir(), "go/bin/ghz")].find((candidate) =>
    candidate !== undefined && (candidate === "ghz" ? onPath("ghz") : existsSync(candidate))
  )
  if (ghz === undefined) {
    console.error("ghz not found: go install github.com/bojand/ghz/cmd/ghz@v0.121.0 (or set GHZ=/path/to/ghz)")
    process.exit(1)
  }

  // Spans received per system: each exports to its own path, /<setting>/v1/traces.
  const received = new Map<string, number>()
  const server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      const system = (request.url ?? "").split("/")[1] ?? ""
      let spans = 0
      for (let at = body.indexOf("\"spanId\":"); at !== -1; at = body.indexOf("\"spanId\":", at + 1)) spans++
      received.set(system, (received.get(system) ?? 0) + spans)
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const sinkUrl = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`

  const settings = [
    { label: "tracing off", endpoint: "off", ratio: "0" },
    { label: "10% sampled", endpoint: `${sinkUrl}/ten`, ratio: "0.1" },
    { label: "100% sampled", endpoint: `${sinkUrl}/all`, ratio: "1" }
  ] as const
  console.log(
    `GetMovieDetails through the gateway: ${requests} calls per measurement, ${concurrency} concurrent on one connection, ${rounds} rounds, ${process.version}`
  )
  // All three systems run side by side and take turns, each round in a different order,
  // so that load from outside this benchmark falls on every setting alike.
  const systems = await Promise.all(settings.map((setting) => startSystem(setting.endpoint, setting.ratio)))
  const results = new Map<
    string,
    Array<{ rps: number; p50: number; p99: number; failed: number; cpuPerCall: number }>
  >()
  try {
    for (const system of systems) await runGhz(ghz, system.port, Math.max(500, Math.floor(requests / 2)), concurrency) // warm-up: JIT, connections
    for (let round = 1; round <= rounds; round++) {
      for (let turn = 0; turn < settings.length; turn++) {
        const index = (turn + round - 1) % settings.length
        const setting = settings[index]!
        const cpuBefore = cpuSeconds(systems[index]!.pid)
        const measured = await runGhz(ghz, systems[index]!.port, requests, concurrency)
        const cpuPerCall = (cpuSeconds(systems[index]!.pid) - cpuBefore) / requests
        results.set(setting.label, [...(results.get(setting.label) ?? []), { ...measured, cpuPerCall }])
        console.log(
          `  round ${round} ${setting.label.padEnd(13)} ${measured.rps.toFixed(0).padStart(6)} calls/s  p50 ${
            ms(measured.p50)
          }  p99 ${ms(measured.p99)}  server CPU ${
            (cpuPerCall * 1e6).toFixed(0).padStart(5)
          } µs/call  failed ${measured.failed}`
        )
      }
    }
  } finally {
    await Promise.all(systems.map((system) => system.stop()))
    server.close()
  }

  const median = (values: ReadonlyArray<number>) => {
    const sorted = [...values].sort((a, b) => a - b)
    const middle = Math.floor(sorted.length / 2)
    return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
  }
  const rps = (label: string) => results.get(label)!.map((r) => r.rps)
  const cpu = (label: string) => median(results.get(label)!.map((r) => r.cpuPerCall))
  const off = median(rps("tracing off"))
  console.log("")
  // CPU per call is what throughput comes down to on a saturated machine, and is far
  // less disturbed than calls/s by other programs sharing it.
  console.log("setting        server CPU per call (median)   off / this")
  for (const setting of settings) {
    console.log(
      `${setting.label.padEnd(13)}  ${(cpu(setting.label) * 1e6).toFixed(0).padStart(22)} µs   ${
        (100 * cpu("tracing off") / cpu(setting.label)).toFixed(1).padStart(8)
      } %`
    )
  }
  console.log("")
  // Every GetMovieDetails traced whole is 10 spans (gateway edge and service, two RPC
  // client and server pairs, each backend's service and repository); seeding adds 6.
  const whole = (Math.max(500, Math.floor(requests / 2)) + rounds * requests) * 10 + 6
  console.log(
    `setting        median calls/s   best calls/s   median vs off   spans received (${whole} if every call were traced)`
  )
  for (const setting of settings) {
    const spans = received.get(setting.endpoint.split("/").at(-1)!) ?? 0
    console.log(
      `${setting.label.padEnd(13)}  ${median(rps(setting.label)).toFixed(0).padStart(14)}   ${
        Math.max(...rps(setting.label)).toFixed(0).padStart(12)
      }   ${(100 * median(rps(setting.label)) / off).toFixed(1).padStart(11)} %   ${String(spans).padStart(14)}`
    )
  }
  const full = median(rps("100% sampled")) / off
  const fullCpu = cpu("tracing off") / cpu("100% sampled")
  console.log(
    `\n100% sampling keeps ${(100 * full).toFixed(1)} % of the untraced throughput by calls/s, ${
      (100 * fullCpu).toFixed(1)
    } % by server CPU per call (medians; goal: at least 70 %): ${Math.min(full, fullCpu) >= 0.7 ? "met" : "NOT met"}`
  )
}

function ms(nanos: number): string {
  return `${(nanos / 1e6).toFixed(2).padStart(6)} ms`
}

/** User and system CPU time a process has used so far, in seconds. */
function cpuSeconds(pid: number): number {
  const ms = ProcessStats.cpuMillis(pid)
  if (ms === undefined) throw new Error(`no CPU figures for process ${pid} (Linux /proc is needed)`)
  return ms / 1000
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => existsSync(join(dir, command)))
}

/** Starts the system in a child process with one tracing setting; `stop` closes it (flushing its spans). */
async function startSystem(
  endpoint: string,
  ratio: string
): Promise<{ readonly port: number; readonly pid: number; readonly stop: () => Promise<void> }> {
  const script = fileURLToPath(import.meta.url)
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", script, "--serve", endpoint, ratio],
    {
      stdio: ["pipe", "pipe", "inherit"]
    }
  )
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout })
    lines.once("line", (line) => resolve(JSON.parse(line).grpc))
    child.once("exit", (code) => reject(new Error(`system exited early (${code})`)))
  })
  return {
    port,
    pid: child.pid!,
    stop: () => {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      child.stdin.end()
      return exited
    }
  }
}

interface GhzReport {
  readonly rps: number
  readonly latencyDistribution: ReadonlyArray<{ readonly percentage: number; readonly latency: number }> | null
  readonly statusCodeDistribution: Readonly<Record<string, number>>
}

async function runGhz(ghz: string, port: number, total: number, concurrency: number) {
  const output = await new Promise<string>((resolve, reject) =>
    execFile(
      ghz,
      [
        "--insecure",
        "--call",
        "movieapp.v1.MovieService/GetMovieDetails",
        "-d",
        "{\"movie_id\":\"1\"}",
        "-n",
        String(total),
        "-c",
        String(concurrency),
        "--connections",
        "1",
        "--format",
        "json",
        `127.0.0.1:${port}`
      ],
      { maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)
    )
  )
  const report = JSON.parse(output) as GhzReport
  const failed = Object.entries(report.statusCodeDistribution).filter(([code]) => code !== "OK").reduce(
    (n, [, count]) => n + count,
    0
  )
  const latency = (p: number) => report.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN
  return { rps: report.rps, p50: latency(50), p99: latency(99), failed }
}
