/**
 * The Compose files as Docker Compose reads them: every file accepted by
 * `docker compose config`, the full stack (deploy/compose.yaml, what a user with
 * an image registry runs) consistent with itself and with the configuration the
 * code reads, and the override for these machines (deploy/compose.host.yaml) the
 * same stack but for where things are. Then that override run for real:
 * `docker compose up --build` on MariaDB, Kafka, the testkit's Consul agent double
 * and an OTLP/HTTP receiver on this machine; the services become healthy through
 * their Compose health checks, the one-shot jobs load the catalog and the events
 * (through Kafka), the original scenario and the sample movies go through the
 * gateway, `docker compose stop` ends each within its grace period with exit code
 * 0, and `docker compose down` leaves nothing behind.
 *
 * The full stack's own MariaDB, Kafka, Consul and Jaeger images cannot be pulled
 * here; what only they could show (the Kafka listeners, the names on the Compose
 * network) is checked statically.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { METADATA_WRITE_SCOPE } from "@movieapp/contracts/Auth"
import * as DevelopmentTokens from "@movieapp/platform/DevelopmentTokens"
import * as ConsulAgentDouble from "@movieapp/testkit/ConsulAgentDouble"
import * as TestKafka from "@movieapp/testkit/Kafka"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import * as OtlpReceiver from "@movieapp/testkit/OtlpReceiver"
import * as Poll from "@movieapp/testkit/Poll"
import { Duration, Effect, Either, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Compose from "./Compose.js"
import * as Deployed from "./Deployed.js"
import * as Docker from "./Docker.js"
import * as Manifests from "./Manifests.js"
import * as Programs from "./Programs.js"
import { repo } from "./Repo.js"

// Each checked, so that in CI a missing one fails rather than skips.
const withCompose = await Docker.composeAvailable()
const withEngine = withCompose && await Docker.engineAvailable()
const withInfrastructure = [await MariaDb.available(), await TestKafka.available()].every(Boolean)

const parsed = withCompose
  ? await Effect.runPromise(Effect.either(Effect.all([Compose.config(Compose.full), Compose.config(Compose.onHost)])))
  : undefined
/** The models Compose makes of the full stack and of the override (a test below fails when it cannot). */
const [fullModel, hostModel] = parsed && Either.isRight(parsed)
  ? parsed.right
  : [{ name: "", services: {} }, { name: "", services: {} }]

const services = Object.entries(fullModel.services)
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

describe.runIf(withCompose)("Docker Compose", () => {
  it.effect("docker compose config accepts every Compose file, as it is used: compose.yaml alone, compose.host.yaml over it", () =>
    Effect.gen(function*() {
      const files = fs.readdirSync(path.join(repo, "deploy")).filter((f) => /^compose.*\.ya?ml$/.test(f)).map((f) =>
        `deploy/${f}`
      )
      assert.sameMembers(files, [...new Set(Compose.configurations.flat())], "every Compose file is checked")
      for (const configuration of Compose.configurations) yield* Compose.compose(configuration, ["config", "--quiet"])
      assert.isTrue(parsed !== undefined && Either.isRight(parsed))
    }))

  it.effect("docker compose config rejects a literal `${` (Compose interpolates it) and an unknown key", () =>
    Effect.gen(function*() {
      const text = fs.readFileSync(path.join(repo, Compose.full[0]), "utf8")
      const broken = fs.mkdtempSync(path.join(os.tmpdir(), "movieapp-compose-"))
      const rejected = (name: string, content: string) => {
        fs.writeFileSync(path.join(broken, name), content)
        return Effect.flip(Compose.compose([path.relative(repo, path.join(broken, name))], ["config", "--quiet"])).pipe(
          Effect.map((e) => e.stderr)
        )
      }
      assert.include(text, "$${process.env.METADATA_URL}")
      assert.include(
        yield* rejected(
          "interpolation.yaml",
          text.replace("$${process.env.METADATA_URL}", "${process.env.METADATA_URL}")
        ),
        "invalid interpolation format"
      )
      assert.include(
        yield* rejected("key.yaml", text.replace("    stop_grace_period: 35s", "    stop_grace_periode: 35s")),
        "stop_grace_periode"
      )
      fs.rmSync(broken, { recursive: true })
    }))

  describe("the full stack (compose.yaml)", () => {
    it("runs the whole system: MariaDB, Kafka (KRaft), Consul, a trace viewer, the three services and the ingestor", () => {
      assert.includeMembers(services.map(([name]) => name), [
        "mysql",
        "kafka",
        "consul",
        "jaeger",
        "metadata",
        "rating",
        "movie",
        "ratingingestor"
      ])
      const kafka = Compose.environment(fullModel.services.kafka)
      assert.strictEqual(kafka.KAFKA_PROCESS_ROLES, "broker,controller", "one node is broker and KRaft controller")
      assert.match(kafka.CLUSTER_ID ?? "", /^[A-Za-z0-9_-]{22}$/)
    })

    it("images: external ones pinned to a version; movieapp ones built from the Dockerfile target of their name, at one tag", () => {
      for (const [name, service] of services.filter(([name]) => !movieapp.some((m) => m.name === name))) {
        const [, tag] = (service.image as string).split(":")
        assert.match(tag ?? "", /\d/, `${name}: ${service.image} is not pinned`)
      }
      assert.sameMembers(built.map((s) => s.image.target), [...Deployed.targets])
      // Built here, so tagged as a local build rather than a release.
      assert.deepStrictEqual([...new Set(movieapp.map((s) => s.image.tag))], ["dev"])
      for (const { name, service, image } of built) {
        assert.strictEqual(name, image.target)
        assert.deepStrictEqual(
          service.build,
          { context: repo, dockerfile: "deploy/Dockerfile", target: image.target },
          name
        )
      }
      // Services that reuse a movieapp image use one this file builds.
      for (const { name, service } of movieapp.filter((s) => s.service.build === undefined)) {
        assert.isTrue(
          built.some((b) => b.service.image === service.image),
          `${name}: ${service.image} is built by no service`
        )
      }
    })

    it("containers run the image's own command: services unchanged, the ingestor given only arguments", () => {
      for (const { name, service, image } of built) {
        assert.isNull(service.entrypoint, name)
        if (Programs.isService(image.target)) assert.isNull(service.command, name)
        else assert.isArray(service.command, name)
      }
    })

    it("every setting a service or ingestor container gets is one its code reads, and its configuration holds", () => {
      assert.sameMembers(running.map((s) => s.name), [...Deployed.services])
      for (const { name, service, image } of running) {
        const result = Programs.check(image.target as Programs.ServiceName, Compose.environment(service))
        assert.deepStrictEqual(result.unread, [], `${name} gets settings its code does not read`)
        assert.deepStrictEqual(result.errors, [], `${name} would not start`)
      }
      const ingestor = Programs.checkIngestor(Compose.environment(fullModel.services.ratingingestor))
      assert.deepStrictEqual(ingestor.unread, [], "the ingestor gets settings its code does not read")
      assert.deepStrictEqual(ingestor.errors, [], "the ingestor would not start")
    })

    it("every movieapp program exports its spans to the stack's Jaeger over OTLP/HTTP, recording every trace, and none waits for it", () => {
      const programs = built.map((s) => s.name)
      assert.sameMembers(programs, [...Deployed.targets])
      // Jaeger 2 receives OTLP/HTTP on 4318, on every interface (its image sets JAEGER_LISTEN_HOST=0.0.0.0).
      assert.match(fullModel.services.jaeger.image, /^jaegertracing\/jaeger:2\./)
      assert.isUndefined(Compose.environment(fullModel.services.jaeger).JAEGER_LISTEN_HOST)
      for (const name of programs) {
        const service = fullModel.services[name]
        assert.deepStrictEqual(Programs.tracing(Compose.environment(service)), {
          endpoint: Option.some("http://jaeger:4318"),
          sampleRatio: 1
        }, name)
        // Started after Jaeger so the first spans find it, but never held back when it cannot start
        // (say, its UI port is taken): without it the spans are dropped and the calls go on.
        assert.deepStrictEqual(service.depends_on?.jaeger, { condition: "service_started", required: false }, name)
      }
    })

    it("services are health-checked over gRPC on their configured port, by the probe in the image", () => {
      for (const { name, service } of running) {
        assert.deepStrictEqual(
          service.healthcheck?.test,
          ["CMD", "node", "packages/platform/dist/GrpcHealthProbe.js"],
          name
        )
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
          assert.isDefined(fullModel.services[dependency], `${name} depends on ${dependency}`)
          if (condition.condition === "service_healthy") {
            assert.isDefined(
              fullModel.services[dependency].healthcheck,
              `${name} waits for ${dependency} to be healthy`
            )
          }
        }
      }
      for (const { name, service } of movieapp) {
        for (const { key, host } of Compose.referencedHosts(Compose.environment(service))) {
          assert.isDefined(fullModel.services[host], `${name} ${key}: no service ${host}`)
          const wanted = fullModel.services[host].healthcheck ? "service_healthy" : "service_started"
          assert.strictEqual(service.depends_on?.[host]?.condition, wanted, `${name} (${key}) starts after ${host}`)
        }
      }
    })

    it("settings that name a movieapp service use the port it listens on for them", () => {
      const named = movieapp.flatMap(({ name, service }) =>
        Compose.referencedHosts(Compose.environment(service)).map((reference) => ({ name, ...reference }))
      )
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
      const consul = fullModel.services.consul
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
      const consumes = Programs.ratingEventsFrom(Compose.environment(fullModel.services.rating))
      assert.strictEqual(consumes?.via, "kafka")
      const ingestor = fullModel.services.ratingingestor
      assert.deepStrictEqual(Programs.ingestorPublishesTo(ingestor.command, Compose.environment(ingestor)), consumes)
    })

    it("Kafka clients on the network bootstrap from, and are sent back to, a listener the broker advertises there", () => {
      const kafka = Compose.environment(fullModel.services.kafka)
      const advertised = (kafka.KAFKA_ADVERTISED_LISTENERS ?? "").split(",").map((l) => l.replace(/^[A-Z_]+:\/\//, ""))
      const listening = (kafka.KAFKA_LISTENERS ?? "").split(",").map((l) =>
        l.match(/^([A-Z_]+):\/\/[^:]*:(\d+)$/)!.slice(1)
      )
      const clients = movieapp.flatMap(({ name, service }) => {
        const brokers = Compose.environment(service).KAFKA_BROKERS
        return brokers === undefined ? [] : brokers.split(",").map((broker) => ({ name, broker }))
      })
      assert.includeMembers(clients.map((c) => c.name), ["rating", "ratingingestor"])
      for (const { name, broker } of clients) {
        assert.include(advertised, broker, `${name}: ${broker} is not an advertised listener`)
        const [listener] = (kafka.KAFKA_ADVERTISED_LISTENERS ?? "").split(",").find((l) => l.endsWith(`//${broker}`))!
          .split(":")
        // The advertised listener is one the broker listens on, at that port, on every interface.
        assert.deepStrictEqual(listening.find(([n]) => n === listener), [listener!, broker.split(":")[1]!], name)
      }
      // The broker's own health check goes through the same listener.
      assert.include(fullModel.services.kafka.healthcheck.test, "kafka:9092")
    })

    it("only the gateway's gRPC port and the tools' UIs are published, on loopback only", () => {
      const published = services.flatMap(([name, service]) => (service.ports ?? []).map((p: any) => ({ name, ...p })))
      for (const port of published) assert.strictEqual(port.host_ip, "127.0.0.1", port.name)
      const movieapps = published.filter((p) => movieapp.some((m) => m.name === p.name))
      assert.deepStrictEqual(movieapps.map((p) => p.name), ["movie"])
      assert.strictEqual(movieapps[0]!.target, serverOf("movie").grpcPort)
    })

    it("movieapp containers are read-only and without capabilities; mounted files exist; named volumes are declared", () => {
      for (const { name, service } of movieapp) {
        assert.strictEqual(service.read_only, true, name)
        assert.deepStrictEqual(service.cap_drop, ["ALL"], name)
      }
      for (const [name, service] of services) {
        for (const volume of (service.volumes ?? []) as Array<{ type: string; source: string }>) {
          if (volume.type === "bind") {
            assert.isTrue(fs.existsSync(volume.source), `${name}: ${volume.source} does not exist`)
          } else {assert.property(
              fullModel.volumes ?? {},
              volume.source,
              `${name}: volume ${volume.source} is not declared`
            )}
        }
      }
    })
  })

  describe("on these machines (compose.host.yaml over compose.yaml)", () => {
    /** Where things are: what the override may change. */
    const addresses = (env: Readonly<Record<string, string>>) =>
      new Set([
        ...Compose.referencedHosts(env).map((r) => r.key),
        "SERVER_GRPC_PORT",
        "MYSQL_PORT",
        "MYSQL_DATABASE",
        "MYSQL_USER",
        "MYSQL_PASSWORD"
      ])

    it("the movieapp programs only, on the host's network, each as in compose.yaml but for where things are", () => {
      assert.sameMembers(Object.keys(hostModel.services), movieapp.map((m) => m.name))
      for (const { name, service } of movieapp) {
        const { build, depends_on, environment: _, healthcheck, network_mode, networks, ports, ...rest } =
          hostModel.services[name]
        const {
          build: fullBuild,
          depends_on: __,
          environment: ___,
          healthcheck: fullHealthcheck,
          networks: ____,
          ports: _____,
          ...fullRest
        } = service
        assert.strictEqual(network_mode, "host", name)
        assert.isUndefined(networks, name)
        assert.isUndefined(ports, name)
        assert.deepStrictEqual(rest, fullRest, `${name}: only its network and settings change`)
        if (fullBuild) {
          assert.deepStrictEqual(build, { ...fullBuild, network: "host" }, `${name}: built on the host's network too`)
        }
        if (fullHealthcheck) {
          const { start_interval: _newerEnginesOnly, ...olderEngines } = fullHealthcheck
          assert.deepStrictEqual(
            healthcheck,
            olderEngines,
            `${name}: the same health check, without what Engine 20.10 lacks`
          )
        }
        const full = Compose.environment(service)
        const here = Compose.environment(hostModel.services[name])
        const moved = addresses(full)
        for (const [key, value] of Object.entries(full)) {
          if (!moved.has(key)) assert.strictEqual(here[key], value, `${name} ${key}`)
        }
        // Only what a shared host needs besides: loopback listeners with their own ports, this run's Kafka names.
        assert.includeMembers(
          ["SERVER_HOST", "SERVER_ADVERTISE_HOST", "SERVER_HTTP_PORT", "SERVER_RPC_PORT", "KAFKA_TOPIC", "KAFKA_GROUP"],
          Object.keys(here).filter((k) => !(k in full)),
          name
        )
        if (Programs.isService(name)) {
          const check = Programs.check(name, {
            ...here,
            CONSUL_HTTP_ADDR: "http://127.0.0.1:8500",
            TRACING_ENDPOINT: "http://127.0.0.1:4318"
          })
          assert.deepStrictEqual([check.unread, check.errors], [[], []], name)
          assert.strictEqual(check.server?.host, "127.0.0.1", `${name} listens on loopback only`)
          assert.strictEqual(check.server?.advertiseHost, "127.0.0.1", name)
        }
        // What waits for what, among the programs.
        const within = Object.fromEntries(
          Object.entries(service.depends_on ?? {}).filter(([d]) => d in hostModel.services)
        )
        assert.deepStrictEqual(depends_on ?? {}, within, name)
      }
      assert.deepStrictEqual(
        Programs.ingestorPublishesTo(
          hostModel.services.ratingingestor.command,
          Compose.environment(hostModel.services.ratingingestor)
        ),
        Programs.ratingEventsFrom(Compose.environment(hostModel.services.rating))
      )
    })

    it.live.runIf(withEngine && withInfrastructure)(
      "docker compose up --build: the services become healthy, the jobs load the catalog and the events, the scenario and the sample movies go through the gateway, stop ends each within its grace period with exit code 0, down leaves nothing",
      () =>
        Effect.gen(function*() {
          const here = Deployed.machine(
            yield* MariaDb.TestDatabase,
            yield* OtlpReceiver.make(),
            yield* ConsulAgentDouble.make()
          )
          const listening = {} as Record<(typeof Deployed.services)[number], Deployed.Listening>
          for (const name of Deployed.services) listening[name] = yield* Deployed.freePorts(name)
          const project = `movieapp-test-${Math.random().toString(36).slice(2, 8)}`
          // The services trust this test's key (compose.yaml's default issuer and audience), the catalog job is an editor.
          const tokens = yield* DevelopmentTokens.make
          const sign = Deployed.signer(tokens, {})
          // What compose.host.yaml takes from the environment: this machine's servers and this test's ports and names.
          const env = {
            ...Deployed.standIns(here),
            AUTH_PUBLIC_KEY: tokens.verifier.key.path,
            EDITOR_TOKEN: yield* sign({ sub: "editor", scope: METADATA_WRITE_SCOPE }),
            KAFKA_TOPIC: here.kafka.topic,
            KAFKA_GROUP: here.kafka.group,
            ...Object.assign(
              {},
              ...Deployed.services.map((name) => Deployed.portSettings(`${name.toUpperCase()}_`, listening[name]))
            )
          }
          const compose = (...args: Array<string>) =>
            Compose.compose(Compose.onHost, ["--project-name", project, ...args], env)
          const containers = Compose.containers(Compose.onHost, project)
          const left = Effect.all({
            containers: Docker.run([
              "ps",
              "--all",
              "--quiet",
              "--filter",
              `label=com.docker.compose.project=${project}`
            ]),
            networks: Docker.run([
              "network",
              "ls",
              "--quiet",
              "--filter",
              `label=com.docker.compose.project=${project}`
            ]),
            volumes: Docker.run(["volume", "ls", "--quiet", "--filter", `label=com.docker.compose.project=${project}`])
          })
          // Whatever happens, the project goes.
          yield* Effect.addFinalizer(() => Effect.ignore(compose("down", "--volumes", "--timeout", "1")))

          yield* compose("up", "--build", "--detach")
          const settled = yield* Poll.until(
            containers,
            (list) =>
              list.some((c) => c.State !== "running" && c.ExitCode !== 0) ||
              (Deployed.services.every((s) => list.find((c) => c.Service === s)?.Health === "healthy") &&
                ["catalog", "ratingingestor"].every((job) => list.find((c) => c.Service === job)?.State === "exited")),
            { what: "the services to be healthy and the jobs to end", timeout: "180 seconds", interval: "500 millis" }
          )
          const failed = settled.filter((c) => c.State !== "running" && c.ExitCode !== 0)
          for (const c of failed) {
            assert.fail(`${c.Service} ${c.State} (exit code ${c.ExitCode}):\n${yield* Docker.logs(c.ID)}`)
          }
          const byService = new Map(settled.map((c) => [c.Service, c]))
          assert.match(yield* Docker.logs(byService.get("ratingingestor")!.ID), /read 452, published 452, skipped 0/)
          assert.include(yield* Docker.logs(byService.get("catalog")!.ID), `loaded ${Deployed.movies.length} movies`)
          for (const name of Deployed.services) yield* Deployed.confined(byService.get(name)!.ID, name)

          yield* Deployed.registeredInConsul(here, listening)
          yield* Deployed.catalogLoaded(listening.metadata)
          yield* Deployed.ratingsLanded(listening.rating)
          yield* Deployed.gatewayAnswers(listening.movie)
          yield* Deployed.originalScenario(listening, sign)
          const caller = yield* Deployed.tracedCall(listening.movie)

          // Compose stops the gateway first, then the backends, each with SIGTERM and its stop_grace_period.
          yield* compose("stop")
          for (const name of Deployed.services) yield* Deployed.stoppedCleanly(byService.get(name)!.ID, name)
          yield* Deployed.deregistered(here, Deployed.services)
          Deployed.tracesExported(here.otlp, caller)

          yield* compose("down")
          assert.deepStrictEqual(yield* left, { containers: "", networks: "", volumes: "" })
        }).pipe(Effect.scoped, Effect.provide([MariaDb.layerTestDatabase, NodeFileSystem.layer])),
      400_000
    )
  })
})
