/**
 * GetMovieDetails through the gateway in the production topology, beside a plain
 * grpc-js ceiling, in one run (issue 17's goals printed beside the figures).
 * Prints figures; asserts nothing.
 *
 * The system: the three services as the images run them, bundled
 * (`node dist/app/packages/<service>/dist/main.js`, `npm run bundle` first; with
 * `--code compiled`, tsc's output as `npm run build` leaves it:
 * `node packages/<service>/dist/main.js`), each its own process, memory storage, tracing off,
 * `DISCOVERY=dns` with the backends' addresses on 127.0.0.1, log level Warning,
 * seeded through their public gRPC APIs with a catalog of movies, each rated by
 * three users. The ceiling: scripts/bench-gateway-ceiling.ts, the same fan-out in
 * plain grpc-js, three processes holding the same catalog.
 *
 * Measured:
 * - start-up: each service started alone, from spawn to grpc.health.v1 SERVING;
 * - GetMovieDetails: ghz at the gateway, requests spread over every movie of the
 *   catalog; calls/s, p50/p99, errors, server CPU per call per process (from
 *   /proc) and summed; the same at the ceiling, the two taking turns round after
 *   round so that load from outside falls on both alike; medians over rounds;
 * - GetAggregatedRating, one hop: ghz straight at the rating service, CPU per call;
 * - resident memory per process: idle once started and seeded, peak over the
 *   run, idle again after the load.
 *
 * Needs ghz: `go install github.com/bojand/ghz/cmd/ghz@v0.121.0` (on PATH, in
 * ~/go/bin, or named by GHZ). Run it alone on the machine (under
 * `flock /tmp/movieapp-bench.lock` where benchmarks share one).
 *
 *   npm run bench:gateway [-- --duration 10 | --requests 30000] [--concurrency 50] [--connections 5]
 *                            [--rounds 3] [--movies 500] [--warmup 3] [--api original|v1]
 *                            [--env KEY=VALUE | --env movie:KEY=VALUE ...] [--code bundle|compiled]
 *                            [--node /path/to/node] [--tls] [--gateway-workers 1]
 *
 * `--env` passes a variable to the three services (or, prefixed with a service's
 * name, to that one), e.g. `--env NODE_OPTIONS=--max-old-space-size=64`.
 * `--node` runs the services and the ceiling with another Node.js than this
 * script's (the images run the Node.js of deploy/Dockerfile's FROM).
 *
 * `--gateway-workers N` runs our gateway as N processes sharing its ports
 * (node:cluster, scripts/bench-gateway-workers.ts): whether workers pay here.
 *
 * `--tls` runs our three services with TLS on every listener and mutual TLS
 * between them, as the production overlay deploys them (certificates made for the
 * run by openssl; ghz and the seeding client trust their CA). The ceiling stays
 * plaintext, so the ratio shows what TLS costs.
 */
import * as Certificates from "@movieapp/testkit/Certificates"
import * as Ports from "@movieapp/testkit/Ports"
import * as ProcessStats from "@movieapp/testkit/ProcessStats"
import { Effect, Exit, Scope } from "effect"
import { execFile } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { catalog } from "./bench-gateway-ceiling.js"
import {
  authEnv,
  clientOf,
  fixed,
  ghz,
  launch,
  type Load,
  loadAverage,
  median,
  numberOption,
  option,
  POLL_MS,
  repo,
  runGhz,
  type Running,
  secure,
  seed,
  sleep,
  sum,
  unary,
  untilServing,
  verdict
} from "./bench-support.js"

// ---------------------------------------------------------------------------------
// Options

const requests = option("requests") === undefined ? undefined : numberOption("requests", 0)
const durationSeconds = numberOption("duration", 10)
const concurrency = numberOption("concurrency", 50)
const connections = numberOption("connections", 5)
const rounds = numberOption("rounds", 3)
const movies = numberOption("movies", 500)
// Issue 17's goals are for calls spread over at least 500 distinct rated movies.
if (!(movies >= 500)) throw new Error(`--movies must be at least 500, got ${movies}`)
const warmupSeconds = numberOption("warmup", 3)
const api = option("api") ?? "original"
if (api !== "original" && api !== "v1") throw new Error(`--api expects original or v1, got ${api}`)
const code = option("code") ?? "bundle"
if (code !== "bundle" && code !== "compiled") throw new Error(`--code expects bundle or compiled, got ${code}`)
const node = option("node") ?? process.execPath
const gatewayWorkers = numberOption("gateway-workers", 1)
if (!(Number.isInteger(gatewayWorkers) && gatewayWorkers >= 1)) {
  throw new Error(`--gateway-workers must be a whole number from 1, got ${gatewayWorkers}`)
}
const SERVICES = ["movie", "metadata", "rating"] as const
type Service = typeof SERVICES[number]
/** What `node` runs for a service: its bundle (what the images run), or tsc's output. */
const entryPoint = (service: Service) =>
  code === "bundle" ? `dist/app/packages/${service}/dist/main.js` : `packages/${service}/dist/main.js`
/** `--env KEY=VALUE` for every service, `--env movie:KEY=VALUE` for one. */
const passthrough: Record<Service, Record<string, string>> = { movie: {}, metadata: {}, rating: {} }
const args = process.argv.slice(2)
const tls = args.includes("--tls")
args.forEach((arg, index) => {
  if (arg !== "--env") return
  const match = /^(?:(movie|metadata|rating):)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(args[index + 1] ?? "")
  if (match === null) throw new Error(`--env expects KEY=VALUE or <service>:KEY=VALUE, got ${args[index + 1]}`)
  for (const service of match[1] === undefined ? SERVICES : [match[1] as Service]) {
    passthrough[service][match[2]!] = match[3]!
  }
})

const GOALS = {
  callsPerSecond: 3_200,
  cpuPerCallMs: 0.45,
  p99Ms: 30,
  oneHopCpuMicros: 60,
  idleMiB: 80,
  loadMiB: 150,
  startupMs: 500
}

// ---------------------------------------------------------------------------------
// Processes

const freePort = () => Effect.runPromise(Ports.free)

/** With `--tls`: each service's certificate and the run's CA, as its settings. */
let pki: Record<Service, Record<string, string>> | undefined
const pkiScope = Effect.runSync(Scope.make())
const makePki = () =>
  Effect.runPromise(
    Effect.gen(function*() {
      const authority = yield* Certificates.authority("bench-gateway CA")
      const settings = {} as Record<Service, Record<string, string>>
      for (const service of SERVICES) {
        const pair = yield* authority.issue(service)
        settings[service] = {
          SERVER_TLS_CERT_FILE: pair.certFile,
          SERVER_TLS_KEY_FILE: pair.keyFile,
          SERVER_TLS_CA_FILE: authority.caFile
        }
      }
      secure.ca = { file: authority.caFile, pem: readFileSync(authority.caFile) }
      return settings
    }).pipe(Scope.extend(pkiScope))
  )

/** Only what the service needs: nothing of this shell's configuration leaks in. */
const serviceEnv = (service: Service, own: Record<string, string>): Record<string, string> => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  NODE_ENV: "production",
  REPOSITORY: "memory",
  DISCOVERY: "dns",
  LOG_LEVEL: "Warn",
  SERVER_HOST: "127.0.0.1",
  ...authEnv,
  ...(pki === undefined ? {} : pki[service]),
  ...own,
  ...passthrough[service]
})

interface Ports {
  readonly grpc: number
  readonly http: number
  /** Where the service serves Effect RPC (what METADATA_ADDRESS and RATING_ADDRESS name). */
  readonly rpc: number
}

const portsEnv = (ports: Ports) => ({
  SERVER_GRPC_PORT: String(ports.grpc),
  SERVER_HTTP_PORT: String(ports.http),
  SERVER_RPC_PORT: String(ports.rpc)
})

/** Fresh ports for a service: gRPC, HTTP, and Effect RPC (`SERVER_RPC_PORT`). */
const freshPorts = async (): Promise<Ports> => ({
  grpc: await freePort(),
  http: await freePort(),
  rpc: await freePort()
})

/**
 * Starts one of our services; the gateway is pointed at `backends`, which need not
 * run yet. `workers` above 1 runs the gateway as that many node:cluster workers.
 */
const startService = async (
  service: Service,
  backends: { readonly metadata: Ports; readonly rating: Ports },
  workers = 1
) => {
  const ports = service === "metadata"
    ? backends.metadata
    : service === "rating"
    ? backends.rating
    : await freshPorts()
  const env = serviceEnv(service, {
    ...portsEnv(ports),
    ...(service === "movie"
      ? { METADATA_ADDRESS: `127.0.0.1:${backends.metadata.rpc}`, RATING_ADDRESS: `127.0.0.1:${backends.rating.rpc}` }
      : {})
  })
  if (pki !== undefined) secure.ports.add(ports.grpc)
  const since = process.hrtime.bigint()
  const running = launch(
    service,
    service === "movie" && workers > 1
      ? [node, await compileScript("bench-gateway-workers"), String(workers), entryPoint(service)]
      : [node, entryPoint(service)],
    env
  )
  const startupMs = await untilServing(running, ports.grpc, since)
  return { running, ports, startupMs }
}

// ---------------------------------------------------------------------------------
// Load: ghz

const dataDir = mkdtempSync(join(tmpdir(), "bench-gateway-"))
const movieIds = catalog(movies).map((movie) => movie.metadata.id)
const dataFile = (name: string, items: ReadonlyArray<unknown>) => {
  const path = join(dataDir, name)
  writeFileSync(path, JSON.stringify(items))
  return path
}
const CALLS = {
  details: api === "v1"
    ? { proto: "proto/movieapp/v1/movie.proto", call: "movieapp.v1.MovieService/GetMovieDetails" }
    : { proto: "proto/legacy/movie.proto", call: "MovieService/GetMovieDetails" },
  oneHop: { proto: "proto/legacy/movie.proto", call: "RatingService/GetAggregatedRating" }
} as const
// ghz sends the array's items in turn: every movie of the catalog, round-robin.
const DATA = {
  details: dataFile("details.json", movieIds.map((id) => ({ movie_id: id }))),
  oneHop: dataFile("one-hop.json", movieIds.map((id) => ({ record_id: id, record_type: "movie" })))
} as const

const load = (kind: keyof typeof CALLS, port: number, pids: ReadonlyArray<number>, seconds: number, total?: number) =>
  runGhz({ ...CALLS[kind], dataFile: DATA[kind], port, pids, seconds, total, concurrency, connections })

// ---------------------------------------------------------------------------------
// Figures

interface System {
  readonly label: string
  /** gateway, metadata, rating */
  readonly processes: ReadonlyArray<Running>
  readonly gatewayPort: number
  readonly ratingPort: number
}

/**
 * Per process, as the goals count memory: for a gateway run as workers, its
 * largest worker (the cluster primary, which only forks them, is left out).
 */
const perProcess = (system: System, read: (pid: number) => number | undefined) =>
  system.processes.map((p) => {
    const workers = ProcessStats.tree(p.pid).slice(1)
    return Math.max(...(workers.length > 0 ? workers : [p.pid]).map((pid) => read(pid) ?? NaN))
  })
const rssOf = (system: System) => perProcess(system, ProcessStats.residentMiB)

const describeLoad = (label: string, result: Load, names: ReadonlyArray<string>) =>
  `  ${label.padEnd(34)} ${fixed(result.rps, 0, 6)} calls/s  p50 ${fixed(result.p50Ms, 1, 6)} ms  p99 ${
    fixed(result.p99Ms, 1, 6)
  } ms  ` +
  `errors ${result.errors}${result.errorKinds.length > 0 ? ` (${result.errorKinds.join("; ")})` : ""}  CPU/call ${
    names.map((name, i) => `${name} ${fixed(result.cpuMs[i]! * 1000, 0, 4)}`).join(" ")
  } µs, sum ${fixed(sum(result.cpuMs) * 1000, 0, 4)} µs  (ghz ${fixed(result.ghzCpuMs * 1000, 0, 3)} µs)`

// ---------------------------------------------------------------------------------
// Run

const main = async () => {
  if (ghz === undefined) {
    throw new Error("ghz not found: go install github.com/bojand/ghz/cmd/ghz@v0.121.0 (or set GHZ=/path/to/ghz)")
  }
  if (ProcessStats.cpuMillis(process.pid) === undefined) {
    throw new Error("Linux /proc is needed for CPU and memory figures")
  }
  for (const service of SERVICES) {
    if (!existsSync(join(repo, entryPoint(service)))) {
      throw new Error(`${entryPoint(service)} is missing: npm run ${code === "bundle" ? "bundle" : "build"}`)
    }
  }
  const nodeVersion = await new Promise<string>((done, fail) =>
    execFile(node, ["--version"], (error, stdout) => error ? fail(error) : done(stdout.trim()))
  )
  if (tls) pki = await makePki()
  const loadText = requests === undefined ? `${durationSeconds} s` : `${requests} calls`
  console.log(
    `bench:gateway — ${
      api === "v1" ? CALLS.details.call : "MovieService/GetMovieDetails (original API)"
    }, ghz ${loadText} per measurement, ` +
      `concurrency ${concurrency} over ${connections} connections, ${rounds} rounds, ${movies} movies (3 ratings each), ` +
      `warm-up ${warmupSeconds} s; services ${
        code === "bundle" ? "bundled (dist/app)" : "compiled by tsc (packages/*/dist)"
      }, ` +
      `Node ${nodeVersion}, ${cpus().length} cores, load average ${loadAverage()}` +
      (tls ? "; movieapp over TLS, mutual TLS between its services (the ceiling plaintext)" : "") +
      (gatewayWorkers > 1
        ? `; movieapp's gateway as ${gatewayWorkers} node:cluster workers (CPU summed over them and their primary, memory of the largest)`
        : "") +
      (Object.values(passthrough).some((env) => Object.keys(env).length > 0)
        ? `; env ${JSON.stringify(passthrough)}`
        : "")
  )

  // 1. Start-up, each service alone (nothing else starting), three times.
  console.log(
    `\nstart-up, each service alone, spawn to grpc.health.v1 SERVING (polled every ${POLL_MS} ms, a new connection each time: each figure is late by at most that plus one check, 1 to 2 ms):`
  )
  const startups: Record<Service, Array<number>> = { movie: [], metadata: [], rating: [] }
  for (let attempt = 0; attempt < 3; attempt++) {
    for (const service of SERVICES) {
      const started = await startService(service, {
        metadata: await freshPorts(),
        rating: await freshPorts()
      })
      startups[service].push(started.startupMs)
      await started.running.stop()
    }
  }
  for (const service of SERVICES) {
    console.log(
      `  ${service.padEnd(9)} median ${fixed(median(startups[service]), 0, 5)} ms  (${
        startups[service].map((ms) => ms.toFixed(0)).join(", ")
      } ms)`
    )
  }

  // 2. Both systems, side by side.
  const metadataPorts = await freshPorts()
  const ratingPorts = await freshPorts()
  const backends = { metadata: metadataPorts, rating: ratingPorts }
  const ourMetadata = await startService("metadata", backends)
  const ourRating = await startService("rating", backends)
  const ourMovie = await startService("movie", backends, gatewayWorkers)
  const ours: System = {
    label: "movieapp",
    processes: [ourMovie.running, ourMetadata.running, ourRating.running],
    gatewayPort: ourMovie.ports.grpc,
    ratingPort: ratingPorts.grpc
  }

  const ceilingPorts = { gateway: await freePort(), metadata: await freePort(), rating: await freePort() }
  const ceilingScript = await compileScript("bench-gateway-ceiling")
  const startCeiling = async (role: string, extra: ReadonlyArray<string>) => {
    const running = launch(`ceiling ${role}`, [node, ceilingScript, role, ...extra], {
      PATH: process.env.PATH ?? "",
      NODE_ENV: "production"
    })
    for (;;) {
      if (running.output().includes("ready")) return running
      if (running.child.exitCode !== null) throw new Error(`ceiling ${role} exited:\n${running.output()}`)
      await sleep(10)
    }
  }
  const ceilingMetadata = await startCeiling("metadata", [String(ceilingPorts.metadata), String(movies)])
  const ceilingRating = await startCeiling("rating", [String(ceilingPorts.rating), String(movies)])
  const ceilingGateway = await startCeiling("gateway", [
    String(ceilingPorts.gateway),
    String(ceilingPorts.metadata),
    String(ceilingPorts.rating)
  ])
  const ceiling: System = {
    label: "ceiling (plain grpc-js)",
    processes: [ceilingGateway, ceilingMetadata, ceilingRating],
    gatewayPort: ceilingPorts.gateway,
    ratingPort: ceilingPorts.rating
  }
  const systems = [ours, ceiling] as const
  const everything = [...ours.processes, ...ceiling.processes]
  try {
    const seedStart = Date.now()
    await seed(metadataPorts.grpc, ratingPorts.grpc, movies)
    console.log(
      `\nseeded ${movies} movies and ${movies * 3} ratings through gRPC in ${
        ((Date.now() - seedStart) / 1000).toFixed(1)
      } s`
    )
    await sanityCheck(ours.gatewayPort, ceiling.gatewayPort)
    const idle = systems.map(rssOf)

    // 3. Warm-up (JIT, connections, pools), then rounds taking turns.
    for (const system of systems) {
      await load("details", system.gatewayPort, [], warmupSeconds)
      await load("oneHop", system.ratingPort, [], Math.max(1, warmupSeconds / 3))
    }
    const details = new Map<System, Array<Load>>(systems.map((s) => [s, []]))
    const oneHop = new Map<System, Array<Load>>(systems.map((s) => [s, []]))
    const names = ["gateway", "metadata", "rating"]
    console.log("\nrounds (CPU per call of each server process, from /proc; ghz's own CPU in brackets):")
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? systems : [...systems].reverse()
      for (const system of order) {
        const result = await load(
          "details",
          system.gatewayPort,
          system.processes.map((p) => p.pid),
          durationSeconds,
          requests
        )
        details.get(system)!.push(result)
        console.log(describeLoad(`${round}: ${system.label} GetMovieDetails`, result, names))
      }
      for (const system of order) {
        const result = await load(
          "oneHop",
          system.ratingPort,
          [system.processes[2]!.pid],
          Math.max(1, durationSeconds / 2),
          requests === undefined ? undefined : Math.ceil(requests / 2)
        )
        oneHop.get(system)!.push(result)
        console.log(describeLoad(`${round}: ${system.label} GetAggregatedRating`, result, ["rating"]))
      }
    }
    const peak = systems.map((system) => perProcess(system, ProcessStats.peakResidentMiB))
    console.log(
      `  (load average now ${loadAverage()}: the machine's other work competes for its ${cpus().length} cores)`
    )
    await sleep(2_000)
    const idleAfter = systems.map(rssOf)

    // 4. Medians.
    const summary = (system: System) => {
      const results = details.get(system)!
      const hop = oneHop.get(system)!
      return {
        rps: median(results.map((r) => r.rps)),
        p50: median(results.map((r) => r.p50Ms)),
        p99: median(results.map((r) => r.p99Ms)),
        errors: sum(results.map((r) => r.errors)),
        cpu: [0, 1, 2].map((i) => median(results.map((r) => r.cpuMs[i]!))),
        cpuSum: median(results.map((r) => sum(r.cpuMs))),
        hopRps: median(hop.map((r) => r.rps)),
        hopCpu: median(hop.map((r) => r.cpuMs[0]!)),
        hopErrors: sum(hop.map((r) => r.errors))
      }
    }
    const us = summary(ours)
    const top = summary(ceiling)
    console.log(
      `\nmedians over ${rounds} rounds           calls/s    p50 ms    p99 ms  errors   CPU per call: gateway  metadata   rating     sum`
    )
    for (const [system, s] of [[ours, us], [ceiling, top]] as const) {
      console.log(
        `  ${system.label.padEnd(34)} ${fixed(s.rps, 0, 7)} ${fixed(s.p50, 1, 9)} ${fixed(s.p99, 1, 9)} ${
          String(s.errors).padStart(7)
        }   ` +
          `${fixed(s.cpu[0]! * 1000, 0, 14)} µs ${fixed(s.cpu[1]! * 1000, 0, 6)} µs ${
            fixed(s.cpu[2]! * 1000, 0, 5)
          } µs ${fixed(s.cpuSum * 1000, 0, 5)} µs`
      )
    }
    console.log(
      `  ratio movieapp / ceiling: ${fixed(us.rps / top.rps, 2, 0)} of its calls/s, ${
        fixed(us.cpuSum / top.cpuSum, 2, 0)
      }× its CPU per call`
    )
    // Whether one process (Node's one thread) limits the rate: a process that keeps a core busy does.
    const busy = (s: typeof us) => s.cpu.map((ms) => s.rps * ms / 1000)
    console.log(
      `  cores kept busy (calls/s × CPU per call): movieapp gateway ${fixed(busy(us)[0]!, 2, 0)}, metadata ${
        fixed(busy(us)[1]!, 2, 0)
      }, rating ${fixed(busy(us)[2]!, 2, 0)}; ` +
        `ceiling gateway ${fixed(busy(top)[0]!, 2, 0)} (of ${cpus().length} cores, which ghz shares)`
    )
    console.log(`\nGetAggregatedRating, one hop (ghz at the rating service), medians:`)
    for (const [system, s] of [[ours, us], [ceiling, top]] as const) {
      console.log(
        `  ${system.label.padEnd(34)} ${fixed(s.hopRps, 0, 7)} calls/s  CPU per call ${
          fixed(s.hopCpu * 1000, 0, 4)
        } µs  errors ${s.hopErrors}`
      )
    }
    console.log(
      `\nresident memory per process (MiB): idle once started and seeded / peak over the run / idle 2 s after the load`
    )
    systems.forEach((system, s) => {
      system.processes.forEach((process, i) => {
        console.log(
          `  ${`${system.label} ${names[i]}`.padEnd(34)} ${fixed(idle[s]![i]!, 0, 5)} / ${
            fixed(peak[s]![i]!, 0, 5)
          } / ${fixed(idleAfter[s]![i]!, 0, 5)}`
        )
      })
    })

    // 5. Goals (issue 17), for the system.
    const startupMax = Math.max(...SERVICES.map((service) => median(startups[service])))
    const idleMax = Math.max(...idle[0]!)
    const peakMax = Math.max(...peak[0]!)
    console.log("\ngoals (issue 17)                                   measured      goal")
    const goal = (what: string, measured: string, target: string, ok: boolean) =>
      console.log(`  ${what.padEnd(48)} ${measured.padStart(10)}   ${target.padEnd(10)} ${verdict(ok)}`)
    goal("GetMovieDetails calls/s", fixed(us.rps, 0, 0), `>= ${GOALS.callsPerSecond}`, us.rps >= GOALS.callsPerSecond)
    goal(
      "server CPU per GetMovieDetails, summed",
      `${fixed(us.cpuSum, 3, 0)} ms`,
      `<= ${GOALS.cpuPerCallMs} ms`,
      us.cpuSum <= GOALS.cpuPerCallMs
    )
    goal("p99", `${fixed(us.p99, 1, 0)} ms`, `<= ${GOALS.p99Ms} ms`, us.p99 <= GOALS.p99Ms)
    goal(
      "GetAggregatedRating CPU per call (one hop)",
      `${fixed(us.hopCpu * 1000, 0, 0)} µs`,
      `<= ${GOALS.oneHopCpuMicros} µs`,
      us.hopCpu * 1000 <= GOALS.oneHopCpuMicros
    )
    goal("resident memory idle, largest process", `${idleMax} MiB`, `<= ${GOALS.idleMiB} MB`, idleMax <= GOALS.idleMiB)
    goal(
      "resident memory under load, largest peak",
      `${peakMax} MiB`,
      `<= ${GOALS.loadMiB} MB`,
      peakMax <= GOALS.loadMiB
    )
    goal(
      "spawn to SERVING, slowest service (median)",
      `${fixed(startupMax, 0, 0)} ms`,
      `<= ${GOALS.startupMs} ms`,
      startupMax <= GOALS.startupMs
    )
    goal("errors", String(us.errors + us.hopErrors), "0", us.errors + us.hopErrors === 0)
  } finally {
    await Promise.all(everything.map((p) => p.stop()))
    rmSync(dataDir, { recursive: true, force: true })
    await Effect.runPromise(Scope.close(pkiScope, Exit.void))
  }
}

/**
 * A script of this directory (the ceiling, the workers' primary) as plain
 * JavaScript, as our services run: TypeScript's own transpiler, no loader in the
 * process (tsx's would add its memory and a thread). Written under node_modules
 * so that its imports resolve as the repository's do.
 */
const compileScript = async (name: string) => {
  const ts = await import("typescript")
  const source = readFileSync(join(repo, `scripts/${name}.ts`), "utf8")
  const output =
    ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } })
      .outputText
  const dir = join(repo, "node_modules/.cache/bench-gateway")
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `${name}.mjs`)
  writeFileSync(path, output)
  return path
}

/** Both gateways give the same details for a few movies: the two hold the same catalog. */
const sanityCheck = async (oursPort: number, ceilingPort: number) => {
  const { MovieServiceClient } = await import("@movieapp/proto/gen/legacy/movie")
  const clients = [
    clientOf(MovieServiceClient, oursPort),
    clientOf(MovieServiceClient, ceilingPort)
  ]
  try {
    for (const id of [movieIds[0]!, movieIds[Math.floor(movieIds.length / 2)]!, movieIds.at(-1)!]) {
      const [a, b] = await Promise.all(
        clients.map((client) =>
          unary(client, client.getMovieDetails, { movieId: id }).then((response) => JSON.stringify(response))
        )
      )
      if (a !== b) throw new Error(`the system and the ceiling disagree on ${id}: ${a} vs ${b}`)
    }
  } finally {
    clients.forEach((client) => client.close())
  }
}

main().then(() => process.exit(0), (error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
