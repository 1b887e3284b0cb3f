/**
 * The images at work, without a Docker engine: deploy/Dockerfile's own steps
 * build every target from a clean copy of the sources (production dependencies,
 * compiled JavaScript, migrations), then each container runs exactly what the
 * image and its deployment say (Kubernetes production overlay, Compose file)
 * with the deployment's settings, only its addresses pointed at this machine
 * (MariaDB, the Kafka broker, the testkit's Consul agent double, an OTLP/HTTP
 * receiver for the trace collector): the services start, register with Consul,
 * answer gRPC health checks, take the sample data through the one-shot jobs
 * (events through Kafka), answer through the gateway, which finds them through
 * Consul, stop cleanly on SIGTERM, and have exported their spans, one trace
 * crossing them, to the collector their deployment names.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as GrpcHealth from "@movieapp/platform/GrpcHealth"
import type { MysqlConfig } from "@movieapp/platform/Mysql"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as ConsulAgentDouble from "@movieapp/testkit/ConsulAgentDouble"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as TestKafka from "@movieapp/testkit/Kafka"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import * as OtlpReceiver from "@movieapp/testkit/OtlpReceiver"
import * as Poll from "@movieapp/testkit/Poll"
import * as Tracing from "@movieapp/testkit/Tracing"
import { type EventLike, independently } from "@movieapp/testkit/ExpectedRatings"
import { Deferred, Effect, Redacted, Schedule } from "effect"
import * as fs from "node:fs"
import { createServer } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Compose from "./Compose.js"
import * as Container from "./Container.js"
import * as Dockerfile from "./Dockerfile.js"
import * as Kustomize from "./Kustomize.js"
import * as Manifests from "./Manifests.js"
import * as Programs from "./Programs.js"

const dockerfile = Dockerfile.read()
// Both checked, so that in CI a missing one fails rather than skips.
const withInfrastructure = [await MariaDb.available(), await TestKafka.available()].every(Boolean)
const targets = ["metadata", "rating", "movie", "ratingingestor"] as const
const sample = path.join(Dockerfile.repo, "packages/devstack/sample")

let workspace: string
const images: Partial<Record<(typeof targets)[number], Dockerfile.Built>> = {}

beforeAll(async () => {
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), "movieapp-image-"))
  // The image's user must be able to reach its files, as in the image.
  fs.chmodSync(workspace, 0o755)
  const cache = new Map<string, Promise<string>>()
  for (const target of targets) images[target] = await Dockerfile.build({ file: dockerfile, target, workspace, cache })
}, 600_000)

afterAll(async () => {
  if (workspace) await fs.promises.rm(workspace, { recursive: true, force: true })
}, 300_000)

const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as { port: number }
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Where a service under test listens: its deployment's ports are taken on a shared machine. */
interface Listening {
  readonly grpc: number
  readonly http: number
}

/** The infrastructure this machine provides for one test. */
interface ThisMachine {
  readonly database: MysqlConfig
  readonly consul: ConsulAgentDouble.ConsulAgentDouble
  /** The ACL token the agent double enforces, if any. */
  readonly consulToken?: string
  /** Names of this test's own on the Kafka broker, which other test runs share. */
  readonly kafka: { readonly topic: string; readonly group: string }
  /** Where the trace collector would be. */
  readonly otlp: OtlpReceiver.OtlpReceiver
}

/**
 * What this machine provides for each infrastructure setting a deployment may
 * name: MariaDB's test database, the broker of scripts/kafka.sh, the testkit's
 * Consul agent double, the testkit's OTLP/HTTP receiver for the trace collector.
 */
const standIns = (machine: ThisMachine): Readonly<Record<string, string>> => ({
  MYSQL_HOST: machine.database.host,
  MYSQL_PORT: String(machine.database.port),
  MYSQL_DATABASE: machine.database.database,
  MYSQL_USER: machine.database.user,
  MYSQL_PASSWORD: Redacted.value(machine.database.password),
  KAFKA_BROKERS: TestKafka.brokers.join(","),
  CONSUL_HTTP_ADDR: machine.consul.url,
  ...(machine.consulToken === undefined ? {} : { CONSUL_HTTP_TOKEN: machine.consulToken }),
  TRACING_ENDPOINT: machine.otlp.url
})

/** A Kafka test's own names for this machine; every program that takes KAFKA_BROKERS gets them. */
const kafkaNames = (names: ThisMachine["kafka"]) => ({
  KAFKA_TOPIC: names.topic,
  KAFKA_DEAD_LETTER_TOPIC: `${names.topic}.dead-letter`,
  KAFKA_GROUP: names.group
})

const machine = (database: MysqlConfig, consul: ConsulAgentDouble.ConsulAgentDouble, otlp: OtlpReceiver.OtlpReceiver, consulToken?: string): ThisMachine => ({
  database,
  consul,
  otlp,
  ...(consulToken === undefined ? {} : { consulToken }),
  kafka: { topic: TestKafka.unique("deploy-ratings"), group: TestKafka.unique("deploy-rating") }
})

/**
 * The deployment's environment with only its addresses moved to this machine:
 * listeners on free loopback ports, infrastructure on its stand-ins (every
 * infrastructure key must have one), URLs of other services on where they listen
 * here, and on the shared Kafka broker this test's own topics and group (the
 * manifest and Compose suites check that the ingestor and the rating service
 * agree on theirs). Every other setting is the deployment's own.
 */
const onThisMachine = (options: {
  readonly env: Readonly<Record<string, string>>
  readonly infrastructure: ReadonlyArray<string>
  readonly listen: Listening | undefined
  readonly machine: ThisMachine
  readonly services: Readonly<Record<string, Listening>>
}): Record<string, string> => {
  const { env, listen, services } = options
  const local = standIns(options.machine)
  for (const key of options.infrastructure) {
    if (!(key in local)) throw new Error(`no stand-in on this machine for ${key}: add one to standIns in deploy/test/Image.test.ts`)
  }
  const moved: Record<string, string> = { ...env }
  for (const [key, value] of Object.entries(local)) if (key in env) moved[key] = value
  if ("KAFKA_BROKERS" in env) Object.assign(moved, kafkaNames(options.machine.kafka))
  if (listen) {
    Object.assign(moved, { SERVER_HOST: "127.0.0.1", SERVER_ADVERTISE_HOST: "127.0.0.1", SERVER_GRPC_PORT: String(listen.grpc), SERVER_HTTP_PORT: String(listen.http) })
  }
  for (const [key, value] of Object.entries(env)) {
    if (!/^https?:\/\//.test(value)) continue
    const target = services[new URL(value).hostname.split(".")[0]!]
    if (target) moved[key] = `http://127.0.0.1:${target.http}`
  }
  return moved
}

/** Kubernetes: the keys a container takes from the endpoints ConfigMap and from Secrets. */
const k8sInfrastructure = (resolved: Manifests.ResolvedEnv) =>
  Object.entries(resolved.source).filter(([, source]) => source.startsWith("ConfigMap/movieapp-endpoints") || source.startsWith("Secret/")).map(([key]) => key)

/** The aggregates the sample events leave: every record they name, with the last rating of each user. */
const expectedAggregates = () =>
  [...independently(JSON.parse(fs.readFileSync(path.join(sample, "ratings.json"), "utf8")) as Array<EventLike>).aggregates.values()]
    .map((a) => ({ ...a, mean: a.sum / Math.max(a.count, 1) }))

/**
 * Waits until `check` passes for the running container (retried, as a prober
 * does), failing with the container's output when it ends first or is not
 * ready within a minute.
 */
const ready = <A, E>(container: Container.Running, check: Effect.Effect<A, E>): Effect.Effect<A, E | Error> =>
  Effect.raceFirst(
    check.pipe(Effect.retry({ schedule: Schedule.spaced("200 millis") })),
    Deferred.await(container.exit).pipe(
      Effect.flatMap((code) => Effect.fail(new Error(`${container.name} exited ${code}:\n${container.output.join("\n")}`)))
    )
  ).pipe(
    Effect.timeoutFail({
      duration: "60 seconds",
      onTimeout: () => new Error(`${container.name} not ready within 60 s:\n${container.output.slice(-20).join("\n")}`)
    })
  )

/** A Kubernetes gRPC probe: grpc.health.v1 Check of the whole server on the container's gRPC port. */
const grpcProbe = (grpcPort: number) =>
  GrpcHealth.check(`127.0.0.1:${grpcPort}`, "", { deadlineMs: 1000 }).pipe(
    Effect.filterOrFail((status) => status === "SERVING", (status) => new Error(status))
  )

/** A one-shot container: runs to its end; its exit code and output. */
const runToEnd = (image: Dockerfile.Built, spec: Container.Spec) =>
  Effect.scoped(Effect.gen(function* () {
    const running = yield* Container.start(image, spec)
    const code = yield* Container.awaitExit(running, "60 seconds")
    return { code, output: running.output.join("\n") }
  }))

/** SIGTERM, as Kubernetes and Docker stop a container: the process ends by itself, exit 0, servers stopped. */
const stopsCleanly = (running: Container.Running) =>
  Effect.gen(function* () {
    yield* running.signal("SIGTERM")
    const code = yield* Container.awaitExit(running)
    assert.strictEqual(code, 0, `${running.name}:\n${running.output.slice(-10).join("\n")}`)
    const messages = running.output.flatMap((line) => {
      try {
        return [JSON.parse(line).message as string]
      } catch {
        return []
      }
    })
    assert.include(messages, "gRPC server stopped", running.name)
  })

/**
 * The sample events made it into the rating service: every record's aggregate as
 * the events imply. Polled: the service consumes them from Kafka in its own time.
 */
const ratingsLanded = (rating: Listening) =>
  Effect.scoped(Effect.gen(function* () {
    const client = yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${rating.grpc}`)
    for (const expected of expectedAggregates()) {
      const answer = yield* Poll.until(
        Grpc.call(Grpc.method(client, "getAggregatedRating"), { recordId: expected.recordId, recordType: expected.recordType }),
        (answer) => answer.ratingsCount === expected.count,
        { what: `${expected.recordType}/${expected.recordId} to count ${expected.count} ratings` }
      )
      if (expected.count > 0) assert.closeTo(answer.ratingValue ?? NaN, expected.mean, 1e-9)
    }
  }))

const movies = JSON.parse(fs.readFileSync(path.join(sample, "movies.json"), "utf8")) as Array<
  { id: string; title: string; description: string; director: string }
>

/**
 * The gateway answers every sample movie with its metadata and the ratings the
 * events imply: it found metadata and rating through Consul. Polled: its view of
 * the backends follows Consul in the background.
 */
const gatewayAnswers = (movie: Listening) =>
  Effect.scoped(Effect.gen(function* () {
    const client = yield* Grpc.client(v1Movie.MovieServiceClient, `127.0.0.1:${movie.grpc}`)
    const aggregates = new Map(expectedAggregates().map((a) => [`${a.recordType}/${a.recordId}`, a]))
    for (const expected of movies) {
      const count = aggregates.get(`movie/${expected.id}`)?.count ?? 0
      const answer = yield* Poll.until(
        Grpc.call(Grpc.method(client, "getMovieDetails"), { movieId: expected.id }),
        (answer) => answer.movieDetails?.ratingsCount === count,
        { what: `the gateway to answer movie ${expected.id} with ${count} ratings` }
      )
      assert.deepStrictEqual(answer.movieDetails?.metadata, expected)
      if (count > 0) assert.closeTo(answer.movieDetails?.rating ?? NaN, aggregates.get(`movie/${expected.id}`)!.mean, 1e-9)
      else assert.isUndefined(answer.movieDetails?.rating)
    }
  }))

/**
 * GetMovieDetails through the gateway as a caller who records its trace: its
 * `traceparent` decides the sampling, whatever ratio the deployment sets.
 */
const tracedCall = (movie: Listening) =>
  Effect.scoped(Effect.gen(function* () {
    const caller = Tracing.callerContext(true)
    const client = yield* Grpc.client(v1Movie.MovieServiceClient, `127.0.0.1:${movie.grpc}`)
    const answer = yield* Grpc.call(Grpc.method(client, "getMovieDetails"), { movieId: movies[0]!.id }, { metadata: { traceparent: caller.traceparent } })
    assert.strictEqual(answer.movieDetails?.metadata?.id, movies[0]!.id)
    return caller
  }))

/**
 * Once every program has stopped (a stop flushes its last spans), the collector
 * their deployment names has every program's spans: the traced call's trace
 * through the gateway into metadata and rating, continuing the caller's, and the
 * ingestor's trace continued by the rating service from the Kafka messages.
 */
const tracesExported = (otlp: OtlpReceiver.OtlpReceiver, caller: ReturnType<typeof Tracing.callerContext>) => {
  const spans = otlp.spans()
  const services = (of: ReadonlyArray<OtlpReceiver.ExportedSpan>) => [...new Set(of.map((span) => span.service))].sort()
  assert.includeMembers(services(spans), ["metadata", "movie", "rating", "ratingingestor"])
  const call = spans.filter((span) => span.traceId === caller.traceId)
  assert.deepStrictEqual(services(call), ["metadata", "movie", "rating"], `the traced call's spans: ${JSON.stringify(call)}`)
  assert.isTrue(call.some((span) => span.service === "movie" && span.parentSpanId === caller.spanId), "the gateway continues the caller's trace")
  const ingestion = new Set(spans.filter((span) => span.service === "ratingingestor").map((span) => span.traceId))
  assert.isTrue(
    spans.some((span) => span.service === "rating" && span.name === "RatingEventSourceKafka.batch" && ingestion.has(span.traceId)),
    "the rating service continues the ingestor's trace"
  )
}

interface HealthEntry {
  readonly Service: { readonly Service: string; readonly Address: string; readonly Port: number }
}

/** The instances of `service` the agent lists (only those passing their checks, with `passing`). */
const registered = (machine: ThisMachine, service: string, passing: boolean) =>
  Effect.tryPromise(async () => {
    const response = await fetch(`${machine.consul.url}/v1/health/service/${service}${passing ? "?passing" : ""}`, {
      headers: machine.consulToken === undefined ? {} : { "x-consul-token": machine.consulToken }
    })
    if (!response.ok) throw new Error(`Consul answered ${response.status}: ${await response.text()}`)
    return (await response.json() as ReadonlyArray<HealthEntry>).map((e) => `${e.Service.Address}:${e.Service.Port}`)
  })

/** Each service is registered in Consul once, passing, at the address it advertises (its HTTP listener here). */
const registeredInConsul = (machine: ThisMachine, listening: Readonly<Record<string, Listening>>) =>
  Effect.forEach(Object.entries(listening), ([service, listen]) =>
    Poll.until(registered(machine, service, true), (addresses) => addresses.length > 0, { what: `${service} to pass its Consul check` }).pipe(
      Effect.map((addresses) => assert.deepStrictEqual(addresses, [`127.0.0.1:${listen.http}`], service))
    ))

/** After a graceful stop, nothing is left in Consul. */
const deregistered = (machine: ThisMachine, services: ReadonlyArray<string>) =>
  Effect.forEach(services, (service) =>
    Effect.map(Effect.orDie(registered(machine, service, false)), (addresses) => assert.deepStrictEqual(addresses, [], `${service} deregistered`)))

describe("the images", () => {
  it("hold compiled JavaScript, production dependencies only, and the migrations, run by an unprivileged user", () => {
    const image = images.rating!
    const at = (p: string) => path.join(image.root, "app", p)
    assert.isTrue(fs.existsSync(at("packages/rating/dist/main.js")))
    assert.isTrue(fs.existsSync(at("packages/platform/dist/GrpcHealthProbe.js")))
    assert.isFalse(fs.existsSync(at("packages/rating/src")), "no TypeScript sources")
    assert.isTrue(fs.readdirSync(at("schema/rating")).some((f) => f.endsWith(".sql")))
    assert.isTrue(fs.readdirSync(at("schema/metadata")).some((f) => f.endsWith(".sql")))
    for (const devOnly of ["typescript", "vitest", "tsx", "@effect/vitest", "kubernetes-models"]) {
      assert.isFalse(fs.existsSync(at(`node_modules/${devOnly}`)), `${devOnly} is a development dependency`)
    }
    assert.strictEqual(fs.realpathSync(at("node_modules/@movieapp/rating")), fs.realpathSync(at("packages/rating")))
    assert.strictEqual(image.config.env.NODE_ENV, "production")
    assert.strictEqual(image.config.user, "node")
    for (const target of targets) assert.strictEqual(images[target]!.root, image.root, "every target shares the runtime's files")
  })

  it("base image: a pinned Node.js of the major version the tests run on, within the project's engines", () => {
    const base = Dockerfile.imageConfig(dockerfile, "rating").base
    const version = base.match(/^node:(\d+)\.(\d+)\.(\d+)-[a-z]+-slim$/)
    assert.isNotNull(version, `${base}: node:<major.minor.patch>-<debian>-slim`)
    assert.strictEqual(Number(version![1]), Number(process.versions.node.split(".")[0]))
    const engines = JSON.parse(fs.readFileSync(path.join(Dockerfile.repo, "package.json"), "utf8")).engines.node as string
    const [minMajor, minMinor] = engines.replace(">=", "").split(".").map(Number) as [number, number]
    assert.isTrue(Number(version![1]) > minMajor || Number(version![2]) >= minMinor, `${base} satisfies ${engines}`)
  })

  it("the dependency layer is made from every workspace's manifest", () => {
    const workspaces = JSON.parse(fs.readFileSync(path.join(Dockerfile.repo, "package.json"), "utf8")).workspaces as Array<string>
    const copied = Dockerfile.stage(dockerfile, "manifests")!.instructions
      .filter((i) => i.keyword === "COPY")
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
    assert.deepStrictEqual(copied.sort(), ["package.json", "package-lock.json", ...workspaces.map((w) => `${w}/package.json`)].sort())
  })

  it("every target runs node itself as PID 1, in exec form", () => {
    for (const target of targets) {
      const config = Dockerfile.imageConfig(dockerfile, target)
      assert.strictEqual(config.entrypoint?.form, "exec", target)
      assert.strictEqual(config.cmd?.form, "exec", target)
      assert.strictEqual(Dockerfile.containerArgv(config)[0], "node", target)
    }
  })

  it.live("the health probe reports a server that does not answer", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const { code, output } = yield* runToEnd(images.metadata!, {
        name: "probe",
        argv: ["node", "packages/platform/dist/GrpcHealthProbe.js"],
        env: { SERVER_GRPC_PORT: String(port) }
      })
      assert.strictEqual(code, 1)
      assert.include(output, `127.0.0.1:${port}`)
    }))

  describe.runIf(withInfrastructure)("on MariaDB, Kafka and a Consul agent double", () => {
    it.live.runIf(Kustomize.available())(
      "Kubernetes (production overlay): the Deployments' containers start, register with Consul, pass their gRPC probes, take the ingestor Job's events through Kafka, answer through the gateway, stop on SIGTERM, and have sent their traces to the collector's stand-in",
      () =>
        Effect.gen(function* () {
          // Production Consul enforces ACLs: the operator's optional Secret holds the token.
          const consulToken = `token-${Math.random().toString(36).slice(2)}`
          const here = machine(yield* MariaDb.TestDatabase, yield* ConsulAgentDouble.make({ aclToken: consulToken }), yield* OtlpReceiver.make(), consulToken)
          const rendered = Manifests.render("production")
          const operatorSecret = {
            apiVersion: "v1",
            kind: "Secret",
            metadata: { name: "movieapp-consul", namespace: "movieapp" },
            stringData: { token: consulToken }
          }
          const objects = [...rendered.services, ...rendered.ingest, operatorSecret]
          const containers = Manifests.workloads(objects).flatMap((w) =>
            (w.pod.containers as Array<any>).map((container) => ({ workload: w, container, target: Manifests.movieappImage(container.image)!.target })))
          const listening: Record<string, Listening> = {}
          for (const name of ["metadata", "rating", "movie"]) listening[name] = { grpc: yield* freePort, http: yield* freePort }

          const running: Array<Container.Running> = []
          for (const { container, target } of containers.filter((c) => Programs.isService(c.target))) {
            const image = images[target as (typeof targets)[number]]!
            const resolved = Manifests.resolveEnv(container, objects)
            const proc = yield* Container.start(image, {
              name: target,
              argv: container.command ?? [...(image.config.entrypoint?.argv ?? []), ...(container.args ?? image.config.cmd?.argv ?? [])],
              env: onThisMachine({ env: resolved.env, infrastructure: k8sInfrastructure(resolved), listen: listening[target], machine: here, services: listening })
            })
            running.push(proc)
          }
          for (const proc of running) {
            // The startup and readiness probes (the manifest test checks they are on the configured gRPC port).
            yield* ready(proc, grpcProbe(listening[proc.name]!.grpc))
            if (process.getuid?.() === 0) {
              const uid = fs.readFileSync(`/proc/${proc.pid}/status`, "utf8").match(/^Uid:\s+(\d+)/m)?.[1]
              assert.strictEqual(Number(uid), Container.uids.node, `${proc.name} runs as the image's user`)
            }
          }
          yield* registeredInConsul(here, listening)

          const job = containers.find((c) => c.target === "ratingingestor")!
          const image = images.ratingingestor!
          const events = path.join(workspace, "ratingingestor-events")
          fs.mkdirSync(events, { recursive: true })
          // The Job's volume: the ConfigMap `ratingingestor-events`, key ratings.json.
          fs.copyFileSync(path.join(sample, "ratings.json"), path.join(events, "ratings.json"))
          const mount = job.container.volumeMounts.find((m: any) =>
            job.workload.pod.volumes.find((v: any) => v.name === m.name)?.configMap?.name === "ratingingestor-events")
          const result = yield* runToEnd(image, {
            name: "ratingingestor",
            argv: [...image.config.entrypoint!.argv, ...job.container.args],
            env: (() => {
              const resolved = Manifests.resolveEnv(job.container, objects)
              return onThisMachine({ env: resolved.env, infrastructure: k8sInfrastructure(resolved), listen: undefined, machine: here, services: listening })
            })(),
            mounts: { [mount.mountPath]: events }
          })
          assert.strictEqual(result.code, 0, result.output)
          assert.match(result.output, /read 452, published 452, skipped 0/)
          yield* ratingsLanded(listening.rating!)

          // The catalog, as an operator loads it: through the metadata service's API.
          yield* Effect.scoped(Effect.gen(function* () {
            const client = yield* Grpc.client(v1Metadata.MetadataServiceClient, `127.0.0.1:${listening.metadata!.grpc}`)
            for (const movie of movies) yield* Grpc.call(Grpc.method(client, "putMetadata"), { metadata: movie })
          }))
          yield* gatewayAnswers(listening.movie!)
          const caller = yield* tracedCall(listening.movie!)

          for (const proc of running.reverse()) yield* stopsCleanly(proc)
          yield* deregistered(here, Object.keys(listening))
          tracesExported(here.otlp, caller)
        }).pipe(Effect.scoped, Effect.provide(MariaDb.layerTestDatabase)),
      180_000
    )

    it.live(
      "Compose: the services start, register with Consul, report healthy through the Compose health check, load the catalog and the events (through Kafka), answer through the gateway, stop on SIGTERM, and have sent their traces to Jaeger's stand-in",
      () =>
        Effect.gen(function* () {
          const here = machine(yield* MariaDb.TestDatabase, yield* ConsulAgentDouble.make(), yield* OtlpReceiver.make())
          const compose = Compose.read()
          const listening: Record<string, Listening> = {}
          for (const name of ["metadata", "rating", "movie"]) listening[name] = { grpc: yield* freePort, http: yield* freePort }
          const composeDir = path.dirname(Compose.composePath)
          const specOf = (name: string, listen: Listening | undefined): Container.Spec & { image: Dockerfile.Built } => {
            const service = compose.services[name]
            const image = images[Manifests.movieappImage(service.image)!.target as (typeof targets)[number]]!
            const mounts = Object.fromEntries((service.volumes ?? []).map((v: string) => {
              const [source, target] = v.split(":") as [string, string]
              return [target, path.resolve(composeDir, source)]
            }))
            // Compose: `entrypoint` replaces the image's ENTRYPOINT and its CMD; `command` replaces CMD.
            const argv = service.entrypoint ?? [...(image.config.entrypoint?.argv ?? []), ...(service.command ?? image.config.cmd?.argv ?? [])]
            const env = Compose.environment(service)
            const infrastructure = Compose.referencedHosts(env).filter((r) => !(r.host in listening)).map((r) => r.key)
            return { name, image, argv, env: onThisMachine({ env, infrastructure, listen, machine: here, services: listening }), mounts }
          }

          const running: Array<Container.Running> = []
          for (const name of ["metadata", "rating", "movie"]) {
            const spec = specOf(name, listening[name])
            running.push(yield* Container.start(spec.image, spec))
          }
          for (const proc of running) {
            const spec = specOf(proc.name, listening[proc.name])
            const [, ...probe] = compose.services[proc.name].healthcheck.test as Array<string>
            // Docker runs the health check inside the container, with its environment.
            const check = runToEnd(spec.image, { ...spec, name: `${proc.name} health check`, argv: probe }).pipe(
              Effect.filterOrFail((r) => r.code === 0, (r) => new Error(`health check exited ${r.code}: ${r.output}`))
            )
            const result = yield* ready(proc, check)
            assert.include(result.output, "SERVING")
          }
          yield* registeredInConsul(here, listening)

          for (const name of ["catalog", "ratingingestor"]) {
            const spec = specOf(name, undefined)
            const result = yield* runToEnd(spec.image, spec)
            assert.strictEqual(result.code, 0, `${name}: ${result.output}`)
            if (name === "ratingingestor") assert.match(result.output, /read 452, published 452, skipped 0/)
          }
          yield* Effect.scoped(Effect.gen(function* () {
            const client = yield* Grpc.client(v1Metadata.MetadataServiceClient, `127.0.0.1:${listening.metadata!.grpc}`)
            for (const movie of movies) {
              const answer = yield* Grpc.call(Grpc.method(client, "getMetadata"), { movieId: movie.id })
              assert.strictEqual(answer.metadata?.title, movie.title)
            }
          }))
          yield* ratingsLanded(listening.rating!)
          yield* gatewayAnswers(listening.movie!)
          const caller = yield* tracedCall(listening.movie!)

          for (const proc of running.reverse()) yield* stopsCleanly(proc)
          yield* deregistered(here, Object.keys(listening))
          tracesExported(here.otlp, caller)
        }).pipe(Effect.scoped, Effect.provide(MariaDb.layerTestDatabase)),
      180_000
    )
  })
})
