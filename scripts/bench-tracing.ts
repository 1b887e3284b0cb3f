/**
 * Gateway throughput with tracing off, at 10 % and at 100 % sampling, measured in
 * one run: the whole system (gateway, metadata, rating; memory storage) in a child
 * process per setting, loaded with `ghz` over real gRPC (GetMovieDetails of a
 * rated movie, so every call crosses both Effect RPC hops). Goal: 100 % sampling
 * keeps at least 70 % of the untraced throughput. Prints figures; asserts nothing.
 *
 * Spans go over OTLP/HTTP to a local sink in this process that answers 200 and
 * counts what it receives (a cheap stand-in for a collector: a real receiver's
 * own cost would be charged to this 2-core machine, not to the service).
 *
 * Needs ghz: `go install github.com/bojand/ghz/cmd/ghz@v0.121.0` (on PATH, in
 * ~/go/bin, or named by GHZ).
 *
 *   npm run bench:tracing [-- --requests 5000 --concurrency 16 --rounds 2]
 */
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
  const System = await import("../packages/devstack/src/System.js")
  const { Effect, Logger, LogLevel, Option } = await import("effect")

  const [, endpoint, ratio] = args
  const tracing = endpoint === "off" ? undefined : { endpoint: Option.some(endpoint!), sampleRatio: Number(ratio) }
  const program = Effect.gen(function* () {
    const metadata = yield* Grpc.client(v1Metadata.MetadataServiceClient, `127.0.0.1:${(yield* MetadataServer.Ports).grpc}`)
    yield* Grpc.call(Grpc.method(metadata, "putMetadata"), { metadata: { id: "1", title: "Heat", description: "A heist.", director: "Michael Mann" } })
    const rating = yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${(yield* RatingServer.Ports).grpc}`)
    yield* Grpc.call(Grpc.method(rating, "putRating"), { recordId: "1", recordType: "movie", userId: "u", ratingValue: 8 })
    console.log(JSON.stringify({ grpc: (yield* MovieServer.Ports).grpc }))
    // Stop (flushing spans) when the parent closes our stdin.
    yield* Effect.async<void>((resume) => {
      process.stdin.on("close", () => resume(Effect.void))
      process.stdin.resume()
    })
  }).pipe(
    Effect.scoped,
    Effect.provide(System.layer({
      host: "127.0.0.1",
      ...System.ephemeralPorts,
      ...(tracing === undefined ? {} : { tracing: (service: string) => Telemetry.layer(service, tracing) })
    })),
    Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )
  NodeRuntime.runMain(program, { disablePrettyLogger: true })
} else {
  await main()
}

// ---------------------------------------------------------------------------------
// Parent: sink, one child per setting, ghz

async function main() {
  const requests = option("requests", 5_000)
  const concurrency = option("concurrency", 16)
  const rounds = option("rounds", 2)
  const ghz = [process.env.GHZ, "ghz", join(homedir(), "go/bin/ghz")].find((candidate) =>
    candidate !== undefined && (candidate === "ghz" ? onPath("ghz") : existsSync(candidate)))
  if (ghz === undefined) {
    console.error("ghz not found: go install github.com/bojand/ghz/cmd/ghz@v0.121.0 (or set GHZ=/path/to/ghz)")
    process.exit(1)
  }

  const sink = { requests: 0, bytes: 0, spans: 0 }
  const server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      sink.requests++
      sink.bytes += body.length
      for (let at = body.indexOf("\"spanId\":"); at !== -1; at = body.indexOf("\"spanId\":", at + 1)) sink.spans++
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const sinkUrl = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`

  const settings = [
    { label: "tracing off", endpoint: "off", ratio: "0" },
    { label: "10% sampled", endpoint: sinkUrl, ratio: "0.1" },
    { label: "100% sampled", endpoint: sinkUrl, ratio: "1" }
  ] as const
  console.log(`GetMovieDetails through the gateway: ${requests} calls per measurement, ${concurrency} concurrent on one connection, ${rounds} round(s), ${process.execPath} ${process.version}`)
  const results = new Map<string, Array<{ rps: number; p50: number; p99: number; failed: number; spans: number }>>()
  for (let round = 1; round <= rounds; round++) {
    for (const setting of settings) {
      const spansBefore = sink.spans
      const measured = await withSystem(setting.endpoint, setting.ratio, async (port) => {
        await runGhz(ghz, port, Math.max(500, Math.floor(requests / 5)), concurrency) // warm-up: JIT, connections
        return runGhz(ghz, port, requests, concurrency)
      })
      const spans = sink.spans - spansBefore
      const entry = { ...measured, spans }
      results.set(setting.label, [...(results.get(setting.label) ?? []), entry])
      console.log(`  round ${round} ${setting.label.padEnd(13)} ${measured.rps.toFixed(0).padStart(6)} calls/s  p50 ${ms(measured.p50)}  p99 ${ms(measured.p99)}  failed ${measured.failed}  spans exported ${spans}`)
    }
  }
  server.close()

  // The best round of each setting: what the machine allows, least disturbed by neighbours.
  const best = (label: string) => Math.max(...results.get(label)!.map((r) => r.rps))
  const off = best("tracing off")
  console.log("")
  console.log("setting        best calls/s   vs off")
  for (const setting of settings) {
    console.log(`${setting.label.padEnd(13)}  ${best(setting.label).toFixed(0).padStart(12)}   ${(100 * best(setting.label) / off).toFixed(1).padStart(5)} %`)
  }
  const full = best("100% sampled") / off
  console.log(`\n100% sampling keeps ${(100 * full).toFixed(1)} % of the untraced throughput (goal: at least 70 %): ${full >= 0.7 ? "met" : "NOT met"}`)
}

function ms(nanos: number): string {
  return `${(nanos / 1e6).toFixed(2).padStart(6)} ms`
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => existsSync(join(dir, command)))
}

/** Starts the system in a child process with one tracing setting, runs `f` against its gateway, stops it. */
async function withSystem<A>(endpoint: string, ratio: string, f: (port: number) => Promise<A>): Promise<A> {
  const script = fileURLToPath(import.meta.url)
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", script, "--serve", endpoint, ratio], {
    stdio: ["pipe", "pipe", "inherit"]
  })
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout })
    lines.once("line", (line) => resolve(JSON.parse(line).grpc))
    child.once("exit", (code) => reject(new Error(`system exited early (${code})`)))
  })
  try {
    return await f(port)
  } finally {
    const exited = new Promise((resolve) => child.once("exit", resolve))
    child.stdin.end()
    await exited
  }
}

interface GhzReport {
  readonly rps: number
  readonly latencyDistribution: ReadonlyArray<{ readonly percentage: number; readonly latency: number }> | null
  readonly statusCodeDistribution: Readonly<Record<string, number>>
}

async function runGhz(ghz: string, port: number, total: number, concurrency: number) {
  const output = await new Promise<string>((resolve, reject) =>
    execFile(ghz, [
      "--insecure",
      "--call", "movieapp.v1.MovieService/GetMovieDetails",
      "-d", "{\"movie_id\":\"1\"}",
      "-n", String(total),
      "-c", String(concurrency),
      "--connections", "1",
      "--format", "json",
      `127.0.0.1:${port}`
    ], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)))
  const report = JSON.parse(output) as GhzReport
  const failed = Object.entries(report.statusCodeDistribution).filter(([code]) => code !== "OK").reduce((n, [, count]) => n + count, 0)
  const latency = (p: number) => report.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN
  return { rps: report.rps, p50: latency(50), p99: latency(99), failed }
}
