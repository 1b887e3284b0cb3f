/**
 * What five concurrent 100 MB request bodies cost a service's memory: runs the
 * metadata service as its own process, sends five `PUT /metadata` of 100 MB at
 * once (with their length declared, then chunked), and prints the process's
 * resident memory before, at its highest during each round, and after.
 *
 *   flock /tmp/movieapp-bench.lock node --conditions=source --import tsx scripts/memory-large-bodies.ts [repository]
 *
 * `repository` (default: this one) is the checkout whose service runs, so that
 * two versions can be compared.
 */
import * as LargeBody from "@movieapp/testkit/LargeBody"
import * as Ports from "@movieapp/testkit/Ports"
import * as ProcessStats from "@movieapp/testkit/ProcessStats"
import { Effect, Schedule } from "effect"
import { spawn } from "node:child_process"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"

const repository = resolve(process.argv[2] ?? fileURLToPath(new URL("..", import.meta.url)))
const MB = 1024 * 1024
const BODIES = 5
const BODY_BYTES = 100 * MB

const residentMiB = (pid: number) => ProcessStats.residentMiB(pid) ?? 0

/** The metadata service of `repository` as its own process, answering HTTP on `port`; stopped with the scope. */
const startService = (port: number) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawn(process.execPath, ["--conditions=source", "--import", "tsx", "packages/metadata/src/main.ts"], {
        cwd: repository,
        env: {
          ...process.env,
          SERVER_HOST: "127.0.0.1",
          SERVER_GRPC_PORT: "0",
          SERVER_HTTP_PORT: String(port),
          LOG_LEVEL: "Error",
          // Writes from anyone: a body is read (and refused at the limit, so no write is
          // made) only once its caller is admitted, and a stranger is refused before.
          AUTH: "disabled"
        },
        stdio: ["ignore", "ignore", "inherit"]
      })
    ),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  ).pipe(
    Effect.tap(() =>
      // Up once it answers; the first requests also load the code of the path measured.
      Effect.tryPromise(() => fetch(`http://127.0.0.1:${port}/metadata?id=warm-up`).then((r) => r.text())).pipe(
        Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo("60 seconds"))),
        Effect.repeatN(20)
      )
    )
  )

const round = (pid: number, port: number, declareLength: boolean) =>
  Effect.gen(function*() {
    let peak = residentMiB(pid)
    const sampler = setInterval(() => (peak = Math.max(peak, residentMiB(pid))), 20)
    const started = performance.now()
    const outcomes = yield* Effect.all(
      Array.from({ length: BODIES }, () =>
        LargeBody.send({ port, method: "PUT", path: "/metadata", bytes: BODY_BYTES, declareLength })),
      { concurrency: "unbounded" }
    )
    const seconds = (performance.now() - started) / 1000
    clearInterval(sampler)
    // "closed": the connection was gone before an answer was read (a 413 sent while this client still wrote is lost with it).
    const statuses = outcomes.map((o) =>
      o.status ?? "closed"
    ).join(", ")
    const taken = outcomes.reduce((n, o) => n + o.sent, 0) / MB
    return { peak, seconds, statuses, taken }
  })

const main = Effect.gen(function*() {
  const port = yield* Ports.free
  const { pid } = yield* startService(port)
  const before = residentMiB(pid!)
  console.log(`metadata service of ${repository}, pid ${pid}: ${before} MiB resident before`)
  console.log(
    `| ${BODIES} bodies of ${
      BODY_BYTES / MB
    } MB at once | answers | bytes the connections took | peak resident | after | time |`
  )
  console.log("|---|---|---|---|---|---|")
  for (const declareLength of [true, false]) {
    const { peak, seconds, statuses, taken } = yield* round(pid!, port, declareLength)
    const after = residentMiB(pid!)
    console.log(
      `| ${declareLength ? "length declared" : "chunked"} | ${statuses} | ${
        taken.toFixed(1)
      } MB | ${peak} MiB | ${after} MiB | ${seconds.toFixed(1)} s |`
    )
  }
}).pipe(Effect.scoped)

Effect.runPromise(main).catch((error) => {
  console.error(error)
  process.exit(1)
})
