/**
 * Browsing the catalogue through the gateway (issue 16's goals printed beside the
 * figures). Prints figures; asserts nothing.
 *
 * - ListMovies, 20 by rating (movieapp.v1, the first page of the chart), ghz at
 *   concurrency 10, over MariaDB storage: a large catalogue (100,000 movies,
 *   1,000,000 ratings) and a small one (1,000 movies, 10,000 ratings), each its
 *   own database and its own three service processes, the two taking turns round
 *   after round. A ranking that scanned would be far slower over the large one.
 *   The databases are filled with multi-row INSERTs straight into the services'
 *   tables after the services migrated them (aggregates computed from the ratings
 *   by one INSERT .. SELECT), not through the API one rating at a time.
 * - BatchGetMovieDetails of 20 ids against GetMovieDetails of one, in the
 *   production topology of bench:gateway (memory storage, ghz at concurrency 50):
 *   server CPU per call summed over the three processes.
 *
 * The services run as the images run them, bundled (`dist/app`, which
 * `npm run bench:catalogue` builds first with `npm run bundle`). Needs ghz and
 * the MariaDB of scripts/mariadb.sh (MYSQL_HOST/PORT/USER/PASSWORD, default
 * 127.0.0.1:3306 movieapp/movieapp; databases named movieapp_bench_* are created
 * and dropped). Run it alone (`flock /tmp/movieapp-bench.lock npm run bench:catalogue`).
 *
 *   npm run bench:catalogue [-- --duration 10] [--rounds 3] [--movies 100000] [--ratings 1000000]
 */
import * as grpc from "@grpc/grpc-js"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as Ports from "@movieapp/testkit/Ports"
import { Effect } from "effect"
import * as mysql from "mysql2/promise"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { catalog } from "./bench-gateway-ceiling.js"
import {
  authEnv,
  fixed,
  ghz,
  launch,
  type Load,
  loadAverage,
  median,
  numberOption,
  repo,
  runGhz,
  type Running,
  seed,
  sum,
  unary,
  untilServing,
  verdict
} from "./bench-support.js"

const durationSeconds = numberOption("duration", 10)
const rounds = numberOption("rounds", 3)
const bigMovies = numberOption("movies", 100_000)
const bigRatings = numberOption("ratings", 1_000_000)
const smallMovies = 1_000
const smallRatings = 10_000
const batchSize = 20

const GOALS = { listP99Ms: 20, smallWithin: 0.2, batchCpuRatio: 3 }

const database = {
  host: process.env.MYSQL_HOST ?? "127.0.0.1",
  port: Number(process.env.MYSQL_PORT ?? 3306),
  user: process.env.MYSQL_USER ?? "movieapp",
  password: process.env.MYSQL_PASSWORD ?? "movieapp"
}

const freePort = () => Effect.runPromise(Ports.free)

/** What `node` runs for a service: its bundle, as the images run it (`npm run bundle`). */
const entryPoint = (service: string) => `dist/app/packages/${service}/dist/main.js`

// ---------------------------------------------------------------------------------
// Systems: three compiled service processes

interface System {
  readonly label: string
  /** gateway, metadata, rating */
  readonly processes: ReadonlyArray<Running>
  readonly gateway: number
  readonly metadataGrpc: number
  readonly ratingGrpc: number
}

const NAMES = ["gateway", "metadata", "rating"]

const freshPorts = async () => ({ grpc: await freePort(), http: await freePort(), rpc: await freePort() })

/** Starts one service as the images run it; resolves once it answers SERVING. */
const startService = async (
  label: string,
  service: string,
  own: { readonly grpc: number; readonly http: number; readonly rpc: number },
  extra: Record<string, string>
) => {
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    NODE_ENV: "production",
    DISCOVERY: "dns",
    LOG_LEVEL: "Warn",
    SERVER_HOST: "127.0.0.1",
    SERVER_GRPC_PORT: String(own.grpc),
    SERVER_HTTP_PORT: String(own.http),
    SERVER_RPC_PORT: String(own.rpc),
    ...authEnv,
    ...extra
  }
  const running = launch(`${label} ${service}`, [process.execPath, entryPoint(service)], env)
  await untilServing(running, own.grpc, process.hrtime.bigint(), 120_000)
  return running
}

const startSystem = async (label: string, storage: Record<string, string>): Promise<System> => {
  const metadata = await freshPorts()
  const rating = await freshPorts()
  const movie = await freshPorts()
  const start = (service: string, own: typeof metadata, extra: Record<string, string>) =>
    startService(label, service, own, extra)
  const metadataProcess = await start("metadata", metadata, storage)
  const ratingProcess = await start("rating", rating, storage)
  const movieProcess = await start("movie", movie, {
    METADATA_ADDRESS: `127.0.0.1:${metadata.rpc}`,
    RATING_ADDRESS: `127.0.0.1:${rating.rpc}`
  })
  return {
    label,
    processes: [movieProcess, metadataProcess, ratingProcess],
    gateway: movie.grpc,
    metadataGrpc: metadata.grpc,
    ratingGrpc: rating.grpc
  }
}

const stopSystem = (system: System) => Promise.all(system.processes.map((p) => p.stop()))

// ---------------------------------------------------------------------------------
// Filling a database

/** A number in [0, 1) from `n`, the same on every run. */
const hash = (n: number) => {
  let x = (n ^ 0x9e3779b9) >>> 0
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0
  return ((x ^ (x >>> 16)) >>> 0) / 2 ** 32
}

/**
 * `movies` movies and `ratings` ratings: popularity falls off steeply (a few
 * movies have thousands of ratings, most a handful), each movie has a quality
 * its ratings scatter around, and every rating is by a user of its own.
 */
const fill = async (name: string, movies: number, ratings: number) => {
  const started = Date.now()
  const pool = mysql.createPool({ ...database, database: name, connectionLimit: 4 })
  try {
    const insertAll = async (total: number, perStatement: number, statement: (from: number, to: number) => string) => {
      let next = 0
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (next < total) {
          const from = next
          next = Math.min(total, next + perStatement)
          await pool.query(statement(from, next))
        }
      }))
    }
    await insertAll(
      movies,
      2_000,
      (from, to) =>
        `INSERT INTO movies (id, title, description, director) VALUES ${
          Array.from({ length: to - from }, (_, k) => {
            const i = from + k
            return `('movie-${i + 1}', 'Movie ${(hash(i) * 1e9).toFixed(0)} ${
              i + 1
            }', 'A film of the benchmark''s catalogue.', 'Director ${i % 37}')`
          }).join(",")
        }`
    )
    await insertAll(
      ratings,
      5_000,
      (from, to) =>
        `INSERT INTO ratings (record_type, record_id, user_id, value) VALUES ${
          Array.from({ length: to - from }, (_, k) => {
            const j = from + k
            const movie = Math.floor(movies * hash(2 * j) ** 3)
            const quality = 2 + 7 * hash(movie + 7)
            const value = Math.min(10, Math.max(1, Math.round(quality + 4 * (hash(2 * j + 1) - 0.5))))
            return `('movie','movie-${movie + 1}','user-${j}',${value})`
          }).join(",")
        }`
    )
    await pool.query(
      `INSERT INTO rating_aggregates (record_type, record_id, ratings_count, ratings_sum)
       SELECT record_type, record_id, COUNT(*), SUM(value) FROM ratings GROUP BY record_type, record_id`
    )
    await pool.query("ANALYZE TABLE movies, ratings, rating_aggregates")
    const [[counts]] = await pool.query(
      "SELECT (SELECT COUNT(*) FROM movies) AS movies, (SELECT COUNT(*) FROM ratings) AS ratings, (SELECT COUNT(*) FROM rating_aggregates) AS rated, (SELECT MAX(ratings_count) FROM rating_aggregates) AS most"
    ) as any
    console.log(
      `  ${name}: ${counts.movies} movies, ${counts.ratings} ratings (${counts.rated} movies rated, the most-rated ${counts.most} times) in ${
        ((Date.now() - started) / 1000).toFixed(1)
      } s`
    )
  } finally {
    await pool.end()
  }
}

// ---------------------------------------------------------------------------------
// Calls

const dataDir = mkdtempSync(join(tmpdir(), "bench-catalogue-"))
const dataFile = (name: string, items: ReadonlyArray<unknown>) => {
  const path = join(dataDir, name)
  writeFileSync(path, JSON.stringify(items))
  return path
}
const PROTO = "proto/movieapp/v1/movie.proto"
const byRating = dataFile("list.json", [{ order_by: "rating", page_size: 20 }])
const memoryMovies = catalog(smallMovies)
const singles = dataFile("single.json", memoryMovies.map((m) => ({ movie_id: m.metadata.id })))
const batches = dataFile(
  "batch.json",
  Array.from(
    { length: smallMovies / batchSize },
    (_, b) => ({ movie_ids: memoryMovies.slice(b * batchSize, (b + 1) * batchSize).map((m) => m.metadata.id) })
  )
)

const describeLoad = (label: string, result: Load) =>
  `  ${label.padEnd(44)} ${fixed(result.rps, 0, 6)} calls/s  p50 ${fixed(result.p50Ms, 1, 5)} ms  p99 ${
    fixed(result.p99Ms, 1, 5)
  } ms  errors ${result.errors}${result.errorKinds.length > 0 ? ` (${result.errorKinds.join("; ")})` : ""}  CPU/call ${
    NAMES.map((name, i) => `${name} ${fixed(result.cpuMs[i]! * 1000, 0, 4)}`).join(" ")
  } µs, sum ${fixed(sum(result.cpuMs) * 1000, 0, 5)} µs`

// ---------------------------------------------------------------------------------
// Run

const main = async () => {
  if (ghz === undefined) {
    throw new Error("ghz not found: go install github.com/bojand/ghz/cmd/ghz@v0.121.0 (or set GHZ=/path/to/ghz)")
  }
  for (const service of ["movie", "metadata", "rating"]) {
    if (!existsSync(join(repo, entryPoint(service)))) {
      throw new Error(`${entryPoint(service)} is missing: npm run bundle`)
    }
  }
  console.log(
    `bench:catalogue — ghz ${durationSeconds} s per measurement, ${rounds} rounds; Node ${process.version}, ${cpus().length} cores, load average ${loadAverage()}`
  )
  const admin = await mysql.createConnection(database)
  const suffix = `${Date.now().toString(36)}_${process.pid}`
  const names = { big: `movieapp_bench_${suffix}_big`, small: `movieapp_bench_${suffix}_small` }
  const systems: Array<System> = []
  try {
    for (const name of Object.values(names)) {
      await admin.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`)
    }
    const storage = (name: string) => ({
      REPOSITORY: "mysql",
      MYSQL_HOST: database.host,
      MYSQL_PORT: String(database.port),
      MYSQL_USER: database.user,
      MYSQL_PASSWORD: database.password,
      MYSQL_DATABASE: name
    })
    // Started first: the services create the tables (their migrations), then the tables are filled.
    const big = await startSystem(`${bigMovies} movies`, storage(names.big))
    systems.push(big)
    const small = await startSystem(`${smallMovies} movies`, storage(names.small))
    systems.push(small)
    console.log("\nfilling the databases with multi-row INSERTs:")
    await fill(names.big, bigMovies, bigRatings)
    await fill(names.small, smallMovies, smallRatings)

    const client = (system: System) =>
      new v1Movie.MovieServiceClient(`127.0.0.1:${system.gateway}`, grpc.credentials.createInsecure())
    for (const system of [big, small]) {
      const movies = client(system)
      const page = await unary<v1Movie.ListMoviesRequest, v1Movie.ListMoviesResponse>(movies, movies.listMovies, {
        pageSize: 20,
        pageToken: "",
        orderBy: "rating",
        minRatingsCount: 0
      })
      movies.close()
      const top = page.movies[0]!
      console.log(
        `  top of ${system.label}: "${top.metadata!.title}", mean ${
          top.rating!.toFixed(2)
        } of ${top.ratingsCount}, damped ${top.dampedRating!.toFixed(3)}; ${page.movies.length} on the page`
      )
    }

    console.log(`\nListMovies, 20 by rating, ghz concurrency 10 over 2 connections (warm-up 3 s each):`)
    const list = (system: System, seconds: number, pids: ReadonlyArray<number>) =>
      runGhz({
        proto: PROTO,
        call: "movieapp.v1.MovieService/ListMovies",
        dataFile: byRating,
        port: system.gateway,
        pids,
        seconds,
        concurrency: 10,
        connections: 2
      })
    for (const system of [big, small]) await list(system, 3, [])
    const listed = new Map<System, Array<Load>>([[big, []], [small, []]])
    for (let round = 1; round <= rounds; round++) {
      for (const system of round % 2 === 1 ? [big, small] : [small, big]) {
        const result = await list(system, durationSeconds, system.processes.map((p) => p.pid))
        listed.get(system)!.push(result)
        console.log(describeLoad(`${round}: over ${system.label}`, result))
      }
    }
    await Promise.all([stopSystem(big), stopSystem(small)])
    systems.length = 0

    // A deployment that changes its ranking prior: the rating service rescores every
    // aggregate at its start (an ALTER that copies the table). Spawn to SERVING, alone,
    // with the stored prior and then with another.
    const aggregates = ((await admin.query(`SELECT COUNT(*) AS n FROM ${names.big}.rating_aggregates`))[0] as Array<
      { readonly n: number }
    >)[0]!.n
    const startRating = async (extra: Record<string, string>) => {
      const since = process.hrtime.bigint()
      const running = await startService("rescoring", "rating", await freshPorts(), { ...storage(names.big), ...extra })
      const seconds = Number(process.hrtime.bigint() - since) / 1e9
      await running.stop()
      return seconds
    }
    const stored = await startRating({})
    const rescored = await startRating({ RANKING_PRIOR_WEIGHT: "20" })
    console.log(
      `\nrating over ${aggregates} aggregates, spawn to SERVING: ${fixed(stored, 2, 0)} s with the stored prior, ${
        fixed(rescored, 2, 0)
      } s with another (rescoring every aggregate: about ${fixed(rescored - stored, 2, 0)} s)`
    )

    console.log(
      `\nBatchGetMovieDetails of ${batchSize} ids against GetMovieDetails, memory storage, ${smallMovies} movies, ghz concurrency 50 over 5 connections:`
    )
    const memory = await startSystem("memory", { REPOSITORY: "memory" })
    systems.push(memory)
    await seed(memory.metadataGrpc, memory.ratingGrpc, smallMovies)
    const call = (kind: "single" | "batch", seconds: number, pids: ReadonlyArray<number>) =>
      runGhz({
        proto: PROTO,
        call: kind === "single"
          ? "movieapp.v1.MovieService/GetMovieDetails"
          : "movieapp.v1.MovieService/BatchGetMovieDetails",
        dataFile: kind === "single" ? singles : batches,
        port: memory.gateway,
        pids,
        seconds,
        concurrency: 50,
        connections: 5
      })
    await call("single", 3, [])
    await call("batch", 3, [])
    const calls = { single: [] as Array<Load>, batch: [] as Array<Load> }
    for (let round = 1; round <= rounds; round++) {
      for (const kind of round % 2 === 1 ? ["single", "batch"] as const : ["batch", "single"] as const) {
        const result = await call(kind, durationSeconds, memory.processes.map((p) => p.pid))
        calls[kind].push(result)
        console.log(
          describeLoad(
            `${round}: ${kind === "single" ? "GetMovieDetails" : `BatchGetMovieDetails(${batchSize})`}`,
            result
          )
        )
      }
    }

    const p99 = (system: System) => median(listed.get(system)!.map((r) => r.p99Ms))
    const cpu = (results: ReadonlyArray<Load>) => median(results.map((r) => sum(r.cpuMs)))
    const bigP99 = p99(big)
    const smallP99 = p99(small)
    const single = cpu(calls.single)
    const batch = cpu(calls.batch)
    console.log(`\nmedians over ${rounds} rounds`)
    for (const system of [big, small]) {
      const results = listed.get(system)!
      console.log(
        `  ListMovies over ${system.label.padEnd(15)} ${fixed(median(results.map((r) => r.rps)), 0, 6)} calls/s  p50 ${
          fixed(median(results.map((r) => r.p50Ms)), 1, 5)
        } ms  p99 ${fixed(p99(system), 1, 5)} ms  server CPU per call ${fixed(cpu(results) * 1000, 0, 5)} µs`
      )
    }
    console.log(
      `  GetMovieDetails              server CPU per call ${fixed(single * 1000, 0, 5)} µs (${
        fixed(median(calls.single.map((r) => r.rps)), 0, 0)
      } calls/s)`
    )
    console.log(
      `  BatchGetMovieDetails(${batchSize})     server CPU per call ${fixed(batch * 1000, 0, 5)} µs (${
        fixed(median(calls.batch.map((r) => r.rps)), 0, 0)
      } calls/s), ${fixed(batch / single, 2, 0)}× one GetMovieDetails, ${
        fixed(batch / batchSize * 1000, 0, 0)
      } µs per movie`
    )

    console.log("\ngoals (issue 16)                                                 measured      goal")
    const goal = (what: string, measured: string, target: string, ok: boolean) =>
      console.log(`  ${what.padEnd(62)} ${measured.padStart(10)}   ${target.padEnd(10)} ${verdict(ok)}`)
    goal(
      `ListMovies 20 by rating, ${bigMovies} movies / ${bigRatings} ratings, p99 at c=10`,
      `${fixed(bigP99, 1, 0)} ms`,
      `<= ${GOALS.listP99Ms} ms`,
      bigP99 <= GOALS.listP99Ms
    )
    goal(
      `the same over ${smallMovies} movies: within 20 % of it`,
      `${fixed(smallP99, 1, 0)} ms`,
      `${fixed(bigP99 * (1 - GOALS.smallWithin), 1, 0)}-${fixed(bigP99 * (1 + GOALS.smallWithin), 1, 0)}`,
      Math.abs(bigP99 - smallP99) <= GOALS.smallWithin * bigP99
    )
    goal(
      `BatchGetMovieDetails(${batchSize}) server CPU / GetMovieDetails`,
      `${fixed(batch / single, 2, 0)}×`,
      `< ${GOALS.batchCpuRatio}×`,
      batch / single < GOALS.batchCpuRatio
    )
    const errors = sum([...listed.values(), calls.single, calls.batch].flat().map((r) => r.errors))
    goal("errors", String(errors), "0", errors === 0)
  } finally {
    await Promise.all(systems.map(stopSystem))
    for (const name of Object.values(names)) await admin.query(`DROP DATABASE IF EXISTS ${name}`)
    await admin.end()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

main().then(() => process.exit(0), (error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
