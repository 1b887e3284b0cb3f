/**
 * deploy/compose.yaml: valid against the Compose Specification, and consistent
 * with deploy/Dockerfile, with itself and with the configuration the code reads.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Compose from "./Compose.js"
import * as Dockerfile from "./Dockerfile.js"
import * as Manifests from "./Manifests.js"
import * as Programs from "./Programs.js"

const compose = Compose.read()
const dockerfile = Dockerfile.read()
const composeDir = path.dirname(Compose.composePath)
const services = Object.entries(compose.services)
const movieapp = services.flatMap(([name, service]) => {
  const image = Manifests.movieappImage(service.image ?? "")
  return image ? [{ name, service, image }] : []
})
const built = movieapp.filter((s) => s.service.build !== undefined)
const running = built.filter((s) => Programs.isService(s.image.target))

/** The settings a movieapp service container starts with. */
const serverOf = (name: string) => {
  const { service, image } = movieapp.find((s) => s.name === name)!
  return Programs.check(image.target as Programs.ServiceName, Compose.environment(service)).server!
}

describe("Docker Compose stack", () => {
  it("is valid against the Compose Specification (which rejects what Compose rejects)", () => {
    assert.deepStrictEqual(Compose.validate(compose), [])
    const broken = structuredClone(compose) as any
    broken.services.movie.helthcheck = broken.services.movie.healthcheck
    broken.services.rating.depends_on.mysql.condition = "service_ready"
    const errors = Compose.validate(broken)
    assert.isTrue(errors.some((e) => e.includes("(helthcheck)")), errors.join("\n"))
    assert.isTrue(errors.some((e) => e.startsWith("/services/rating/depends_on/mysql/condition")), errors.join("\n"))
  })

  it("runs the whole system: MariaDB, Kafka (KRaft), Consul, a trace viewer, the three services and the ingestor", () => {
    assert.includeMembers(services.map(([name]) => name), ["mysql", "kafka", "consul", "jaeger", "metadata", "rating", "movie", "ratingingestor"])
    const kafka = Compose.environment(compose.services.kafka)
    assert.strictEqual(kafka.KAFKA_PROCESS_ROLES, "broker,controller", "one node is broker and KRaft controller")
    assert.match(kafka.CLUSTER_ID ?? "", /^[A-Za-z0-9_-]{22}$/)
  })

  it("images: external ones pinned to a version; movieapp ones built from the Dockerfile target of their name, at one tag", () => {
    for (const [name, service] of services.filter(([name]) => !movieapp.some((m) => m.name === name))) {
      const [, tag] = (service.image as string).split(":")
      assert.match(tag ?? "", /\d/, `${name}: ${service.image} is not pinned`)
    }
    assert.deepStrictEqual(built.map((s) => s.image.target).sort(), ["metadata", "movie", "rating", "ratingingestor"])
    // Built here, so tagged as a local build rather than a release.
    assert.deepStrictEqual([...new Set(movieapp.map((s) => s.image.tag))], ["dev"])
    for (const { name, service, image } of built) {
      assert.strictEqual(name, image.target)
      assert.strictEqual(path.resolve(composeDir, service.build.context), Dockerfile.repo, `${name}: build context is the repository`)
      assert.strictEqual(path.resolve(path.resolve(composeDir, service.build.context), service.build.dockerfile), Dockerfile.dockerfilePath)
      assert.strictEqual(service.build.target, image.target)
      assert.isDefined(Dockerfile.stage(dockerfile, image.target))
    }
    // Services that reuse a movieapp image use one this file builds.
    for (const { name, service } of movieapp.filter((s) => s.service.build === undefined)) {
      assert.isTrue(built.some((b) => b.service.image === service.image), `${name}: ${service.image} is built by no service`)
    }
  })

  it("containers run the image's own command: services unchanged, the ingestor given only arguments", () => {
    for (const { name, service, image } of built) {
      assert.isUndefined(service.entrypoint, name)
      if (Programs.isService(image.target)) assert.isUndefined(service.command, name)
      else assert.isArray(service.command, name)
    }
  })

  it("every setting a service or ingestor container gets is one its code reads, and its configuration holds", () => {
    assert.deepStrictEqual(running.map((s) => s.name).sort(), ["metadata", "movie", "rating"])
    for (const { name, service, image } of running) {
      const result = Programs.check(image.target as Programs.ServiceName, Compose.environment(service))
      assert.deepStrictEqual(result.unread, [], `${name} gets settings its code does not read`)
      assert.deepStrictEqual(result.errors, [], `${name} would not start`)
    }
    const ingestor = Programs.checkIngestor(Compose.environment(compose.services.ratingingestor))
    assert.deepStrictEqual(ingestor.unread, [], "the ingestor gets settings its code does not read")
    assert.deepStrictEqual(ingestor.errors, [], "the ingestor would not start")
  })

  it("every movieapp program exports its spans to the stack's Jaeger over OTLP/HTTP, recording every trace, and none waits for it", () => {
    const programs = built.map((s) => s.name).sort()
    assert.deepStrictEqual(programs, ["metadata", "movie", "rating", "ratingingestor"])
    // Jaeger 2 receives OTLP/HTTP on 4318, on every interface (its image sets JAEGER_LISTEN_HOST=0.0.0.0).
    assert.match(compose.services.jaeger.image, /^jaegertracing\/jaeger:2\./)
    assert.isUndefined(Compose.environment(compose.services.jaeger).JAEGER_LISTEN_HOST)
    for (const name of programs) {
      const service = compose.services[name]
      assert.deepStrictEqual(Programs.tracing(Compose.environment(service)), { endpoint: Option.some("http://jaeger:4318"), sampleRatio: 1 }, name)
      // Started after Jaeger so the first spans find it, but never held back when it cannot start
      // (say, its UI port is taken): without it the spans are dropped and the calls go on.
      assert.deepStrictEqual(service.depends_on?.jaeger, { condition: "service_started", required: false }, name)
    }
  })

  it("services are health-checked over gRPC on their configured port, by a probe the image contains", () => {
    assert.isTrue(fs.existsSync(path.join(Dockerfile.repo, "packages/platform/src/GrpcHealthProbe.ts")))
    for (const { name, service } of running) {
      assert.deepStrictEqual(service.healthcheck?.test, ["CMD", "node", "packages/platform/dist/GrpcHealthProbe.js"], name)
      // The probe reads the port from the same environment as the service.
      assert.strictEqual(Number(Compose.environment(service).SERVER_GRPC_PORT), serverOf(name).grpcPort, name)
    }
  })

  it("a stop fits in the grace period: the drain (SERVER_SHUTDOWN_TIMEOUT), then KAFKA_DRAIN_TIMEOUT when consuming Kafka and the span flush when tracing, and some margin", () => {
    for (const { name, service, image } of running) {
      const grace = Compose.seconds(service.stop_grace_period ?? "10s")
      const stopping = Programs.check(image.target as Programs.ServiceName, Compose.environment(service)).stopTimeout!
      assert.isAtLeast(grace, Duration.toSeconds(stopping) + 5, name)
    }
  })

  it("dependencies exist; a container starts after what its settings name, once healthy where a health check says so", () => {
    for (const [name, service] of services) {
      for (const [dependency, condition] of Object.entries(service.depends_on ?? {}) as Array<[string, any]>) {
        assert.isDefined(compose.services[dependency], `${name} depends on ${dependency}`)
        if (condition.condition === "service_healthy") assert.isDefined(compose.services[dependency].healthcheck, `${name} waits for ${dependency} to be healthy`)
      }
    }
    for (const { name, service } of movieapp) {
      for (const { key, host } of Compose.referencedHosts(Compose.environment(service))) {
        assert.isDefined(compose.services[host], `${name} ${key}: no service ${host}`)
        const wanted = compose.services[host].healthcheck ? "service_healthy" : "service_started"
        assert.strictEqual(service.depends_on?.[host]?.condition, wanted, `${name} (${key}) starts after ${host}`)
      }
    }
  })

  it("settings that name a movieapp service use the port it listens on for them", () => {
    const named = movieapp.flatMap(({ name, service }) =>
      Compose.referencedHosts(Compose.environment(service)).map((reference) => ({ name, ...reference })))
    for (const { name, key, host, port } of named.filter((r) => running.some((s) => s.name === r.host))) {
      // Effect RPC (the catalog loader, the ingestor) is served on the HTTP port.
      assert.strictEqual(Number(port), serverOf(host).httpPort, `${name} ${key}`)
    }
    // The services find each other through Consul; the catalog loader calls the metadata service by name.
    assert.includeDeepMembers(named.map((r) => [r.name, r.key, r.host]), [["catalog", "METADATA_URL", "metadata"]])
    for (const { service } of running.filter((s) => Compose.environment(s.service).MYSQL_HOST)) {
      assert.strictEqual(Compose.environment(service).MYSQL_PORT, "3306", "MariaDB's port in its image")
    }
  })

  it("the services find each other through the stack's Consul agent", () => {
    const consul = compose.services.consul
    assert.include(consul.command, "-client", "the agent's HTTP API listens beyond its loopback")
    assert.strictEqual(consul.command[consul.command.indexOf("-client") + 1], "0.0.0.0")
    for (const { name, service } of running) {
      const env = Compose.environment(service)
      assert.strictEqual(env.DISCOVERY, "consul", name)
      // The agent's HTTP API on its default port.
      assert.strictEqual(env.CONSUL_HTTP_ADDR, "http://consul:8500", name)
      // A container's own address on the network is what others dial (the default when binding 0.0.0.0).
      assert.isUndefined(env.SERVER_ADVERTISE_HOST, name)
      assert.strictEqual(serverOf(name).host, "0.0.0.0", name)
    }
  })

  it("the ingestor publishes to the Kafka topic the rating service consumes, through the same brokers", () => {
    const consumes = Programs.ratingEventsFrom(Compose.environment(compose.services.rating))
    assert.strictEqual(consumes?.via, "kafka")
    const ingestor = compose.services.ratingingestor
    assert.deepStrictEqual(Programs.ingestorPublishesTo(ingestor.command, Compose.environment(ingestor)), consumes)
  })

  it("Kafka clients on the network bootstrap from, and are sent back to, a listener the broker advertises there", () => {
    const kafka = Compose.environment(compose.services.kafka)
    const advertised = (kafka.KAFKA_ADVERTISED_LISTENERS ?? "").split(",").map((l) => l.replace(/^[A-Z_]+:\/\//, ""))
    const listening = (kafka.KAFKA_LISTENERS ?? "").split(",").map((l) => l.match(/^([A-Z_]+):\/\/[^:]*:(\d+)$/)!.slice(1))
    const clients = movieapp.flatMap(({ name, service }) => {
      const brokers = Compose.environment(service).KAFKA_BROKERS
      return brokers === undefined ? [] : brokers.split(",").map((broker) => ({ name, broker }))
    })
    assert.includeMembers(clients.map((c) => c.name), ["rating", "ratingingestor"])
    for (const { name, broker } of clients) {
      assert.include(advertised, broker, `${name}: ${broker} is not an advertised listener`)
      const [listener] = (kafka.KAFKA_ADVERTISED_LISTENERS ?? "").split(",").find((l) => l.endsWith(`//${broker}`))!.split(":")
      // The advertised listener is one the broker listens on, at that port, on every interface.
      assert.deepStrictEqual(listening.find(([n]) => n === listener), [listener!, broker.split(":")[1]!], name)
    }
    // The broker's own health check goes through the same listener.
    assert.include(compose.services.kafka.healthcheck.test, "kafka:9092")
  })

  it("only the gateway's gRPC port and the tools' UIs are published, on loopback only", () => {
    const published = services.flatMap(([name, service]) => (service.ports ?? []).map((p: string) => ({ name, port: String(p) })))
    for (const { name, port } of published) assert.match(port, /^127\.0\.0\.1:\d+:\d+$/, name)
    const movieapps = published.filter((p) => movieapp.some((m) => m.name === p.name))
    assert.deepStrictEqual(movieapps.map((p) => p.name), ["movie"])
    assert.strictEqual(Number(movieapps[0]!.port.split(":")[2]), serverOf("movie").grpcPort)
  })

  it("movieapp containers are read-only and without capabilities; mounted files exist; named volumes are declared", () => {
    for (const { name, service } of movieapp) {
      assert.strictEqual(service.read_only, true, name)
      assert.deepStrictEqual(service.cap_drop, ["ALL"], name)
    }
    for (const [name, service] of services) {
      for (const volume of (service.volumes ?? []) as Array<string>) {
        const [source] = volume.split(":")
        if (source!.startsWith(".") || source!.startsWith("/")) {
          assert.isTrue(fs.existsSync(path.resolve(composeDir, source!)), `${name}: ${source} does not exist`)
        } else {
          assert.property(compose.volumes ?? {}, source!, `${name}: volume ${source} is not declared`)
        }
      }
    }
  })
})
