/**
 * What a deployed movieapp must do, checked from outside over real sockets, the
 * same way whatever runs it (containers started as Kubernetes would, a Compose
 * project): the infrastructure this machine provides, the original scenario, the
 * sample data arriving, the gateway finding its backends through Consul, the
 * spans reaching the collector.
 */
import { assert } from "@effect/vitest"
import type * as grpc from "@grpc/grpc-js"
import { METADATA_WRITE_SCOPE } from "@movieapp/contracts/Auth"
import type * as DevelopmentTokens from "@movieapp/platform/DevelopmentTokens"
import * as GrpcHealth from "@movieapp/platform/GrpcHealth"
import type { MysqlConfig } from "@movieapp/platform/Mysql"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import type * as ConsulAgentDouble from "@movieapp/testkit/ConsulAgentDouble"
import { type EventLike, independently } from "@movieapp/testkit/ExpectedRatings"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as TestKafka from "@movieapp/testkit/Kafka"
import type * as OtlpReceiver from "@movieapp/testkit/OtlpReceiver"
import * as Poll from "@movieapp/testkit/Poll"
import * as Ports from "@movieapp/testkit/Ports"
import * as Tracing from "@movieapp/testkit/Tracing"
import { Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Docker from "./Docker.js"
import { repo } from "./Repo.js"

/** The programs deploy/Dockerfile builds, each its own target and image. */
export const targets = ["metadata", "rating", "movie", "ratingingestor"] as const
export type Target = (typeof targets)[number]
export const services = ["metadata", "rating", "movie"] as const

/** The images the tests run: what `docker compose … build` tags. */
export const image = (target: Target) => `movieapp/${target}:dev`

export const sample = path.join(repo, "packages/devstack/sample")

/** Where a service under test listens: its deployment's ports are taken on a shared machine. */
export interface Listening {
  readonly grpc: number
  readonly http: number
  /** Effect RPC, for the services that serve it. */
  readonly rpc?: number
  /** What a client trusts when the listeners serve TLS (the production overlay's); plaintext when absent. */
  readonly credentials?: grpc.ChannelCredentials
}

/** Free ports on this machine for `service`'s listeners. */
export const freePorts = (service: (typeof services)[number]) =>
  Effect.gen(function*() {
    const ports: Listening = { grpc: yield* Ports.free, http: yield* Ports.free }
    return service === "movie" ? ports : { ...ports, rpc: yield* Ports.free }
  })

/** The settings that make a service listen on `listen` (the ports it has). */
export const portSettings = (prefix: string, listen: Listening): Record<string, string> => ({
  [`${prefix}GRPC_PORT`]: String(listen.grpc),
  [`${prefix}HTTP_PORT`]: String(listen.http),
  ...(listen.rpc === undefined ? {} : { [`${prefix}RPC_PORT`]: String(listen.rpc) })
})

/** The infrastructure this machine provides for one test. */
export interface ThisMachine {
  readonly database: MysqlConfig
  /** A Consul agent, for deployments that find each other through one (Compose). */
  readonly consul?: ConsulAgentDouble.ConsulAgentDouble
  /** Names of this test's own on the Kafka broker, which other test runs share. */
  readonly kafka: { readonly topic: string; readonly group: string }
  /** Where the trace collector would be. */
  readonly otlp: OtlpReceiver.OtlpReceiver
}

export const machine = (
  database: MysqlConfig,
  otlp: OtlpReceiver.OtlpReceiver,
  consul?: ConsulAgentDouble.ConsulAgentDouble
): ThisMachine => ({
  database,
  otlp,
  ...(consul === undefined ? {} : { consul }),
  kafka: { topic: TestKafka.unique("deploy-ratings"), group: TestKafka.unique("deploy-rating") }
})

/**
 * What this machine provides for each infrastructure setting a deployment may
 * name: MariaDB's test database, the broker of scripts/kafka.sh, the testkit's
 * Consul agent double, the testkit's OTLP/HTTP receiver for the trace collector.
 */
export const standIns = (here: ThisMachine): Readonly<Record<string, string>> => ({
  MYSQL_HOST: here.database.host,
  MYSQL_PORT: String(here.database.port),
  MYSQL_DATABASE: here.database.database,
  MYSQL_USER: here.database.user,
  MYSQL_PASSWORD: Redacted.value(here.database.password),
  KAFKA_BROKERS: TestKafka.brokers.join(","),
  ...(here.consul === undefined ? {} : { CONSUL_HTTP_ADDR: here.consul.url }),
  TRACING_ENDPOINT: here.otlp.url
})

/** A Kafka test's own names; every program that takes KAFKA_BROKERS gets them. */
export const kafkaNames = (names: ThisMachine["kafka"]) => ({
  KAFKA_TOPIC: names.topic,
  KAFKA_DEAD_LETTER_TOPIC: `${names.topic}.dead-letter`,
  KAFKA_GROUP: names.group
})

/** A Kubernetes gRPC probe: grpc.health.v1 Check of the whole server. */
export const serving = (listen: Listening) =>
  GrpcHealth.check(`127.0.0.1:${listen.grpc}`, "", { deadlineMs: 1000, credentials: listen.credentials }).pipe(
    Effect.filterOrFail((status) => status === "SERVING", (status) => new Error(status))
  )

export const movies = JSON.parse(fs.readFileSync(path.join(sample, "movies.json"), "utf8")) as Array<
  { id: string; title: string; description: string; director: string }
>

/** The aggregates the sample events leave: every record they name, with the last rating of each user. */
const expectedAggregates = () =>
  [
    ...independently(JSON.parse(fs.readFileSync(path.join(sample, "ratings.json"), "utf8")) as Array<EventLike>)
      .aggregates.values()
  ]
    .map((a) => ({ ...a, mean: a.sum / Math.max(a.count, 1) }))

/**
 * The sample events made it into the rating service: every record's aggregate as
 * the events imply. Polled: the service consumes them from Kafka in its own time.
 */
export const ratingsLanded = (rating: Listening) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* Grpc.client(v1Rating.RatingServiceClient, `127.0.0.1:${rating.grpc}`, rating.credentials)
    for (const expected of expectedAggregates()) {
      const answer = yield* Poll.until(
        Grpc.call(Grpc.method(client, "getAggregatedRating"), {
          recordId: expected.recordId,
          recordType: expected.recordType
        }),
        (answer) => answer.ratingsCount === expected.count,
        { what: `${expected.recordType}/${expected.recordId} to count ${expected.count} ratings` }
      )
      if (expected.count > 0) assert.closeTo(answer.ratingValue ?? NaN, expected.mean, 1e-9)
    }
  }))

/** Every sample movie is in the metadata service. */
export const catalogLoaded = (metadata: Listening) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* Grpc.client(
      v1Metadata.MetadataServiceClient,
      `127.0.0.1:${metadata.grpc}`,
      metadata.credentials
    )
    for (const movie of movies) {
      const answer = yield* Grpc.call(Grpc.method(client, "getMetadata"), { movieId: movie.id })
      assert.deepStrictEqual(answer.metadata, movie)
    }
  }))

/**
 * Signs tokens the deployed services accept: with the key they were given, for
 * the issuer and audience they were configured with.
 */
export type Signer = (claims: { readonly sub: string; readonly scope?: string }) => Effect.Effect<string>

/** A signer on a development key, for a deployment's AUTH_ISSUER and AUTH_AUDIENCE. */
export const signer = (
  tokens: DevelopmentTokens.DevelopmentTokens["Type"],
  env: Readonly<Record<string, string>>
): Signer =>
(claims) =>
  tokens.sign({
    ...claims,
    ...(env.AUTH_ISSUER === undefined ? {} : { issuer: env.AUTH_ISSUER }),
    ...(env.AUTH_AUDIENCE === undefined ? {} : { audience: env.AUTH_AUDIENCE })
  })

const bearer = (sign: Signer, claims: Parameters<Signer>[0]) =>
  Effect.map(sign(claims), (token) => ({ metadata: { authorization: `Bearer ${token}` } }))

/** The catalog, as an operator loads it: through the metadata service's API, as an editor. */
export const loadCatalog = (metadata: Listening, sign: Signer) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* Grpc.client(
      v1Metadata.MetadataServiceClient,
      `127.0.0.1:${metadata.grpc}`,
      metadata.credentials
    )
    const editor = yield* bearer(sign, { sub: "editor", scope: METADATA_WRITE_SCOPE })
    for (const movie of movies) yield* Grpc.call(Grpc.method(client, "putMetadata"), { metadata: movie }, editor)
  }))

/**
 * The gateway answers every sample movie with its metadata and the ratings the
 * events imply: it found metadata and rating (through Consul or DNS). Polled: its
 * view of the backends follows discovery in the background.
 */
export const gatewayAnswers = (movie: Listening) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* Grpc.client(v1Movie.MovieServiceClient, `127.0.0.1:${movie.grpc}`, movie.credentials)
    const aggregates = new Map(expectedAggregates().map((a) => [`${a.recordType}/${a.recordId}`, a]))
    for (const expected of movies) {
      const count = aggregates.get(`movie/${expected.id}`)?.count ?? 0
      const answer = yield* Poll.until(
        Grpc.call(Grpc.method(client, "getMovieDetails"), { movieId: expected.id }),
        (answer) => answer.movieDetails?.ratingsCount === count,
        { what: `the gateway to answer movie ${expected.id} with ${count} ratings` }
      )
      assert.deepStrictEqual(answer.movieDetails?.metadata, expected)
      if (count > 0) {
        assert.closeTo(answer.movieDetails?.rating ?? NaN, aggregates.get(`movie/${expected.id}`)!.mean, 1e-9)
      } else assert.isUndefined(answer.movieDetails?.rating)
    }
  }))

/**
 * The original system's scenario, through the deployed services over gRPC: put
 * a movie's metadata and read it back; its details show no rating; a user rates
 * it 5, then 1 (the latest replaces the earlier); the details show 1.
 */
export const originalScenario = (at: Readonly<Record<"metadata" | "rating" | "movie", Listening>>, sign: Signer) =>
  Effect.scoped(Effect.gen(function*() {
    const user0 = yield* bearer(sign, { sub: "user0" })
    const editor = yield* bearer(sign, { sub: "editor", scope: METADATA_WRITE_SCOPE })
    const metadata = yield* Grpc.client(
      v1Metadata.MetadataServiceClient,
      `127.0.0.1:${at.metadata.grpc}`,
      at.metadata.credentials
    )
    const rating = yield* Grpc.client(
      v1Rating.RatingServiceClient,
      `127.0.0.1:${at.rating.grpc}`,
      at.rating.credentials
    )
    const movie = yield* Grpc.client(v1Movie.MovieServiceClient, `127.0.0.1:${at.movie.grpc}`, at.movie.credentials)
    const theMovie = {
      id: `the-movie-${Math.random().toString(36).slice(2, 8)}`,
      title: "The Movie",
      description: "A film about a film.",
      director: "Someone"
    }
    const key = { recordId: theMovie.id, recordType: "movie" }
    const rateBy = (value: number) =>
      Grpc.call(Grpc.method(rating, "putRating"), { ...key, userId: "user0", ratingValue: value }, user0)

    yield* Grpc.call(Grpc.method(metadata, "putMetadata"), { metadata: theMovie }, editor)
    assert.deepStrictEqual(
      (yield* Grpc.call(Grpc.method(metadata, "getMetadata"), { movieId: theMovie.id })).metadata,
      theMovie
    )
    const unrated = yield* Grpc.call(Grpc.method(movie, "getMovieDetails"), { movieId: theMovie.id })
    assert.deepStrictEqual(unrated.movieDetails, {
      metadata: theMovie,
      rating: undefined,
      ratingsCount: 0,
      dampedRating: undefined // set in listings by rating only
    })
    yield* rateBy(5)
    assert.deepStrictEqual(yield* Grpc.call(Grpc.method(rating, "getAggregatedRating"), key), {
      ratingValue: 5,
      ratingsCount: 1
    })
    yield* rateBy(1)
    assert.deepStrictEqual(yield* Grpc.call(Grpc.method(rating, "getAggregatedRating"), key), {
      ratingValue: 1,
      ratingsCount: 1
    })
    const rated = yield* Grpc.call(Grpc.method(movie, "getMovieDetails"), { movieId: theMovie.id })
    assert.deepStrictEqual(rated.movieDetails, {
      metadata: theMovie,
      rating: 1,
      ratingsCount: 1,
      dampedRating: undefined
    })
  }))

/**
 * GetMovieDetails through the gateway as a caller who records its trace: its
 * `traceparent` decides the sampling, whatever ratio the deployment sets.
 */
export const tracedCall = (movie: Listening) =>
  Effect.scoped(Effect.gen(function*() {
    const caller = Tracing.callerContext(true)
    const client = yield* Grpc.client(v1Movie.MovieServiceClient, `127.0.0.1:${movie.grpc}`, movie.credentials)
    const answer = yield* Grpc.call(Grpc.method(client, "getMovieDetails"), { movieId: movies[0]!.id }, {
      metadata: { traceparent: caller.traceparent }
    })
    assert.strictEqual(answer.movieDetails?.metadata?.id, movies[0]!.id)
    return caller
  }))

/**
 * Once every program has stopped (a stop flushes its last spans), the collector
 * their deployment names has every program's spans: the traced call's trace
 * through the gateway into metadata and rating, continuing the caller's, and the
 * ingestor's trace continued by the rating service from the Kafka messages.
 */
export const tracesExported = (otlp: OtlpReceiver.OtlpReceiver, caller: ReturnType<typeof Tracing.callerContext>) => {
  const spans = otlp.spans()
  const servicesOf = (of: ReadonlyArray<OtlpReceiver.ExportedSpan>) =>
    [...new Set(of.map((span) => span.service))].sort()
  assert.includeMembers(servicesOf(spans), ["metadata", "movie", "rating", "ratingingestor"])
  const call = spans.filter((span) => span.traceId === caller.traceId)
  assert.deepStrictEqual(
    servicesOf(call),
    ["metadata", "movie", "rating"],
    `the traced call's spans: ${JSON.stringify(call)}`
  )
  assert.isTrue(
    call.some((span) => span.service === "movie" && span.parentSpanId === caller.spanId),
    "the gateway continues the caller's trace"
  )
  const ingestion = new Set(spans.filter((span) => span.service === "ratingingestor").map((span) => span.traceId))
  assert.isTrue(
    spans.some((span) =>
      span.service === "rating" && span.name === "RatingEventSourceKafka.batch" && ingestion.has(span.traceId)
    ),
    "the rating service continues the ingestor's trace"
  )
}

interface HealthEntry {
  readonly Service: { readonly Service: string; readonly Address: string; readonly Port: number }
}

/** The instances of `service` the agent lists (only those passing their checks, with `passing`). */
const registered = (here: ThisMachine, service: string, passing: boolean) =>
  Effect.tryPromise(async () => {
    if (here.consul === undefined) throw new Error("this deployment runs without Consul")
    const response = await fetch(`${here.consul.url}/v1/health/service/${service}${passing ? "?passing" : ""}`)
    if (!response.ok) throw new Error(`Consul answered ${response.status}: ${await response.text()}`)
    return (await response.json() as ReadonlyArray<HealthEntry>).map((e) => `${e.Service.Address}:${e.Service.Port}`)
  })

/** Each service is registered in Consul once, passing, at the address it advertises (its Effect RPC listener; the gateway's HTTP one). */
export const registeredInConsul = (here: ThisMachine, listening: Readonly<Record<string, Listening>>) =>
  Effect.forEach(
    Object.entries(listening),
    ([service, listen]) =>
      Poll.until(registered(here, service, true), (addresses) => addresses.length > 0, {
        what: `${service} to pass its Consul check`
      }).pipe(
        Effect.map((addresses) =>
          assert.deepStrictEqual(addresses, [`127.0.0.1:${listen.rpc ?? listen.http}`], service)
        )
      )
  )

/** After a graceful stop, nothing is left in Consul. */
export const deregistered = (here: ThisMachine, names: ReadonlyArray<string>) =>
  Effect.forEach(
    names,
    (service) =>
      Effect.map(Effect.orDie(registered(here, service, false)), (addresses) =>
        assert.deepStrictEqual(addresses, [], `${service} deregistered`))
  )

/** A service's container runs its program as uid 1000 on a read-only root file system. */
export const confined = (container: string, name: string) =>
  Effect.gen(function*() {
    assert.strictEqual(yield* Docker.processUid(container), 1000, `${name} runs as uid 1000`)
    const root = yield* Docker.rootIsReadOnly(container)
    assert.isTrue(root.readOnly, `${name}: ${root.reason}`)
  })

/** A stopped service's container ended by itself after SIGTERM: exit code 0 (not 137, a SIGKILL), its servers stopped. */
export const stoppedCleanly = (container: string, name: string) =>
  Effect.gen(function*() {
    const stopped = yield* Docker.state(container)
    const output = yield* Docker.logs(container)
    assert.strictEqual(stopped.ExitCode, 0, `${name}:\n${output.split("\n").slice(-10).join("\n")}`)
    assert.include(Docker.logMessages(output), "gRPC server stopped", name)
  })
