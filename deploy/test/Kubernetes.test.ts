/**
 * The Kubernetes manifests as kustomize renders each overlay: valid against the
 * Kubernetes API schemas (kubernetes-models), and consistent with themselves,
 * and with the configuration the code reads. That the images fit them (their
 * commands, their user) is checked with the images themselves (Image.test.ts).
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Option } from "effect"
import * as models from "kubernetes-models"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Kustomize from "./Kustomize.js"
import type { K8sObject } from "./Kustomize.js"
import * as Manifests from "./Manifests.js"
import * as Programs from "./Programs.js"
import { repo } from "./Repo.js"

// The operator's guide to the manifests.
const readme = fs.readFileSync(path.join(repo, "docs", "deployment.md"), "utf8")

/** The kubernetes-models class for an apiVersion and kind (`apps/v1` Deployment is `models.apps.v1.Deployment`). */
const modelOf = (apiVersion: string, kind: string): (new(data: unknown) => { validate(): void }) | undefined => {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") as [string, string] : ["", apiVersion]
  const groupKey = group.replace(/\.([a-z])/g, (_, c: string) => c.toUpperCase())
  const index = models as unknown as Record<string, Record<string, Record<string, any>>>
  return (group === "" ? (index[version] as unknown as Record<string, any>) : index[groupKey]?.[version])?.[kind]
}

const describeObject = (o: K8sObject) => `${o.kind} ${o.metadata.name}`

/** Seconds a preStop hook holds the container before SIGTERM. */
const preStopSeconds = (container: any): number => {
  const hook = container.lifecycle?.preStop
  if (hook?.sleep) return Number(hook.sleep.seconds)
  const argv: Array<string> | undefined = hook?.exec?.command
  return argv?.[0] === "sleep" ? Number(argv[1]) : 0
}

describe.runIf(Kustomize.available())("Kubernetes manifests", () => {
  const rendered = Object.fromEntries(Manifests.overlays.map((o) => [o, Manifests.render(o)])) as Record<
    Manifests.Overlay,
    Manifests.Rendered
  >

  it("the schema check and the project checks reject what they should", () => {
    const Deployment = modelOf("apps/v1", "Deployment")!
    assert.throws(() => new Deployment({ metadata: { name: "x" }, spec: { template: {} } }).validate())
    assert.throws(() =>
      new (modelOf("v1", "Service")!)({ metadata: { name: "x" }, spec: { ports: [{ port: "grpc" }] } }).validate()
    )
    assert.isUndefined(modelOf("apps/v1", "Deploymnet"))
    assert.deepStrictEqual(Programs.check("rating", { REPOSITORY: "mysql", MYSQL_USER: "u" }).errors.length, 1)
    assert.deepStrictEqual(Programs.check("movie", { REPOSITRY: "mysql" }).unread, ["REPOSITRY"])
    // Settings of the adapters main.ts picks: Kafka's when INGESTION=kafka, Consul's when DISCOVERY=consul.
    assert.deepStrictEqual(
      Programs.check("rating", { INGESTION: "kafka" }).errors.length,
      1,
      "KAFKA_BROKERS is required"
    )
    assert.deepStrictEqual(Programs.check("rating", { KAFKA_BROKERS: "kafka:9092", AUTH: "disabled" }).errors, [])
    // Secure by default: a service that takes writes holds no configuration without a key to verify them.
    assert.deepStrictEqual(Programs.check("metadata", {}).errors.length, 1, "AUTH_PUBLIC_KEY_FILE or AUTH_JWKS_URL")
    assert.deepStrictEqual(
      Programs.check("metadata", {
        AUTH_JWKS_URL: "https://auth.example.com/.well-known/jwks.json",
        AUTH_ISSUER: "https://auth.example.com/",
        AUTH_AUDIENCE: "movieapp"
      }).errors,
      []
    )
    assert.deepStrictEqual(
      Programs.check("movie", { DISCOVERY: "consul", CONSUL_HTTP_ADDR: "ftp://consul" }).errors.length,
      1
    )
    assert.deepStrictEqual(Programs.check("movie", { KAFKA_BROKERS: "kafka:9092" }).unread, ["KAFKA_BROKERS"])
    const stop = (env: Record<string, string>) =>
      Duration.toSeconds(Programs.check("rating", { AUTH: "disabled", ...env }).stopTimeout!)
    assert.strictEqual(stop({ SERVER_SHUTDOWN_TIMEOUT: "10 seconds", KAFKA_DRAIN_TIMEOUT: "7 seconds" }), 10)
    assert.strictEqual(
      stop({
        SERVER_SHUTDOWN_TIMEOUT: "10 seconds",
        KAFKA_DRAIN_TIMEOUT: "7 seconds",
        INGESTION: "kafka",
        KAFKA_BROKERS: "k:9092"
      }),
      17
    )
    // With a trace endpoint, the stop ends flushing the last spans.
    assert.strictEqual(stop({ SERVER_SHUTDOWN_TIMEOUT: "10 seconds", TRACING_ENDPOINT: "http://collector:4318" }), 15)
    assert.deepStrictEqual(Programs.check("movie", { TRACING_ENDPOINT: "collector:4318" }).errors.length, 1)
    // The ingestor's environment: its options' fallbacks and tracing.
    assert.deepStrictEqual(
      Programs.checkIngestor({ KAFKA_BROKERS: "k:9092", TRACING_ENDPOINT: "http://c:4318", TRACING_SAMPLE_RATIO: "1" }),
      { unread: [], errors: [] }
    )
    assert.deepStrictEqual(Programs.checkIngestor({ KAFKA_GROUP: "g" }).unread, ["KAFKA_GROUP"])
    assert.strictEqual(Programs.checkIngestor({ TRACING_SAMPLE_RATIO: "2" }).errors.length, 1)
    assert.strictEqual(Programs.checkIngestor({ KAFKA_BROKERS: "k:x" }).errors.length, 1)
  })

  it("the ingestor Job is applied apart from the services, so applying them never re-runs an ingestion", () => {
    for (const overlay of Manifests.overlays) {
      assert.deepStrictEqual(rendered[overlay].services.filter((o) => o.kind === "Job").map(describeObject), [])
      assert.deepStrictEqual(rendered[overlay].ingest.filter((o) => o.kind !== "ConfigMap").map(describeObject), [
        "Job ratingingestor"
      ])
    }
  })

  it("the ingestor Job carries the services' endpoints ConfigMap unchanged, so applying it changes nothing", () => {
    for (const overlay of Manifests.overlays) {
      const configMaps = (objects: ReadonlyArray<K8sObject>) => objects.filter((o) => o.kind === "ConfigMap")
      const endpoints = configMaps(rendered[overlay].services).filter((o) =>
        o.metadata.name.startsWith("movieapp-endpoints-")
      )
      assert.strictEqual(endpoints.length, 1, overlay)
      assert.deepStrictEqual(configMaps(rendered[overlay].ingest), endpoints, overlay)
    }
  })

  for (const overlay of Manifests.overlays) {
    describe(`overlay ${overlay}`, () => {
      const { services, ingest } = rendered[overlay]
      const all = [...services, ...ingest]
      const movieappContainers = Manifests.workloads(all).flatMap((workload) =>
        (workload.pod.containers as Array<any>).flatMap((container) => {
          const image = Manifests.movieappImage(container.image)
          return image ? [{ workload, container, image }] : []
        })
      )
      const serviceContainers = movieappContainers.filter((c) => Programs.isService(c.image.target))

      it("every object is valid against the Kubernetes API schemas", () => {
        for (const object of all) {
          const Model = modelOf(object.apiVersion, object.kind)
          assert.isDefined(Model, `no schema for ${object.apiVersion} ${object.kind}`)
          assert.doesNotThrow(() => new Model!(object).validate(), undefined, describeObject(object))
        }
      })

      it("every object lives in the namespace the overlay creates", () => {
        const namespaces = services.filter((o) => o.kind === "Namespace").map((o) => o.metadata.name)
        assert.deepStrictEqual(namespaces, ["movieapp"])
        for (const object of all.filter((o) => o.kind !== "Namespace")) {
          assert.strictEqual(object.metadata.namespace, "movieapp", describeObject(object))
        }
      })

      it("selectors: each workload selects its own pods; each Service and PodDisruptionBudget selects exactly one workload", () => {
        const workloads = Manifests.workloads(all)
        for (const { object, podLabels } of workloads.filter((w) => w.object.kind !== "Job")) {
          assert.isTrue(
            Manifests.matches(object.spec.selector.matchLabels, podLabels),
            `${describeObject(object)}: selector does not match its pod labels`
          )
          assert.isUndefined(object.spec.selector.matchExpressions, "selectors are plain labels")
        }
        for (const object of all.filter((o) => o.kind === "Service" || o.kind === "PodDisruptionBudget")) {
          const selector = object.kind === "Service" ? object.spec.selector : object.spec.selector.matchLabels
          const selected = workloads.filter((w) => Manifests.matches(selector, w.podLabels))
          assert.deepStrictEqual(
            selected.length,
            1,
            `${describeObject(object)} selects ${selected.map((w) => describeObject(w.object)).join(", ") || "nothing"}`
          )
        }
      })

      it("every Service targetPort and every probe port is a port of the selected container", () => {
        const workloads = Manifests.workloads(all)
        for (const service of all.filter((o) => o.kind === "Service")) {
          const workload = workloads.find((w) => Manifests.matches(service.spec.selector, w.podLabels))!
          const ports = (workload.pod.containers as Array<any>).flatMap((c) => c.ports ?? [])
          for (const port of service.spec.ports) {
            const target = port.targetPort ?? port.port
            assert.isTrue(
              ports.some((p: any) => p.name === target || p.containerPort === target),
              `${describeObject(service)} port ${port.name} targets ${target}, which the pod does not expose`
            )
          }
        }
        for (const { object, pod } of workloads) {
          for (const container of pod.containers) {
            for (const kind of ["startupProbe", "readinessProbe", "livenessProbe"]) {
              const probe = container[kind]
              const port = probe?.grpc?.port ?? probe?.httpGet?.port ?? probe?.tcpSocket?.port
              if (port === undefined) continue
              assert.isTrue(
                (container.ports ?? []).some((p: any) => p.containerPort === port || p.name === port),
                `${describeObject(object)} ${container.name} ${kind} on port ${port}, not a container port`
              )
            }
          }
        }
      })

      it("each service runs as a Deployment with a Service, a PodDisruptionBudget and rolling updates that keep every ready pod", () => {
        assert.deepStrictEqual(serviceContainers.map((c) => c.image.target).sort(), ["metadata", "movie", "rating"])
        for (const { workload } of serviceContainers) {
          const deployment = workload.object
          assert.strictEqual(deployment.kind, "Deployment")
          assert.strictEqual(deployment.spec.strategy.type, "RollingUpdate")
          assert.strictEqual(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0, describeObject(deployment))
          assert.isAtLeast(deployment.spec.strategy.rollingUpdate.maxSurge, 1)
          const selects = (o: K8sObject) =>
            Manifests.matches(o.kind === "Service" ? o.spec.selector : o.spec.selector.matchLabels, workload.podLabels)
          assert.isTrue(
            services.some((o) => o.kind === "Service" && selects(o)),
            `no Service for ${describeObject(deployment)}`
          )
          const budgets = services.filter((o) => o.kind === "PodDisruptionBudget" && selects(o))
          assert.strictEqual(budgets.length, 1, `PodDisruptionBudgets of ${describeObject(deployment)}`)
          // A budget that allows no eviction would block every node drain of a one-replica service.
          assert.strictEqual(budgets[0]!.spec.maxUnavailable, 1)
        }
        if (overlay === "production") {
          for (const { workload } of serviceContainers) {
            assert.isAtLeast(workload.object.spec.replicas, 2, describeObject(workload.object))
          }
        }
      })

      it("only the gateway's gRPC port is reachable from outside the cluster", () => {
        const exposed = services.filter((o) =>
          o.kind === "Service" && (o.spec.type === "LoadBalancer" || o.spec.type === "NodePort")
        )
        for (const service of exposed) {
          assert.strictEqual(service.spec.selector["app.kubernetes.io/name"], "movie", describeObject(service))
          assert.deepStrictEqual(service.spec.ports.map((p: any) => p.targetPort), ["grpc"], describeObject(service))
        }
        assert.strictEqual(exposed.length, overlay === "production" ? 1 : 0)
        assert.isFalse(all.some((o) => o.kind === "Ingress"))
      })

      it("images are movieapp's, named after their containers, all at one release tag", () => {
        assert.deepStrictEqual(movieappContainers.map((c) => c.image.target).sort(), [
          "metadata",
          "movie",
          "rating",
          "ratingingestor"
        ])
        const tags = new Set(movieappContainers.map((c) => c.image.tag))
        assert.strictEqual(tags.size, 1, `tags ${[...tags].join(", ")}`)
        const [tag] = tags
        assert.isDefined(tag, "an explicit tag")
        assert.notStrictEqual(tag, "latest")
        // Production runs a release; the local overlay runs what was just built (dev).
        if (overlay === "production") assert.match(tag!, /^\d+\.\d+\.\d+/)
        for (const { container, image } of movieappContainers) assert.strictEqual(container.name, image.target)
      })

      it("containers run the image's own command: services unchanged, the ingestor Job given only arguments", () => {
        for (const { container, image } of movieappContainers) {
          assert.isUndefined(container.command, `${container.name} overrides the image's ENTRYPOINT`)
          if (Programs.isService(image.target)) {
            assert.isUndefined(container.args, `${container.name} overrides the image's CMD`)
          } else assert.isAbove(container.args?.length ?? 0, 0, "the ingestor needs its file")
        }
      })

      it("every setting a service container gets is one its code reads, and its configuration holds", () => {
        for (const { workload, container, image } of serviceContainers) {
          const resolved = Manifests.resolveEnv(container, all)
          assert.deepStrictEqual(resolved.problems, [])
          const result = Programs.check(image.target as Programs.ServiceName, resolved.env)
          assert.deepStrictEqual(result.unread, [], `${container.name} gets settings its code does not read`)
          assert.deepStrictEqual(result.errors, [], `${container.name} would not start`)
          const server = result.server!
          const port = (name: string) => container.ports.find((p: any) => p.name === name)?.containerPort
          assert.strictEqual(port("grpc"), server.grpcPort, `${container.name}: grpc port`)
          assert.strictEqual(port("http"), server.httpPort, `${container.name}: http port`)
          for (const kind of ["startupProbe", "readinessProbe", "livenessProbe"]) {
            if (server.tls === undefined) {
              // The server as a whole (""): grpc.health.v1 as GrpcServer serves it.
              assert.deepStrictEqual(container[kind]?.grpc, { port: server.grpcPort }, `${container.name} ${kind}`)
            } else {
              // The kubelet's gRPC probe speaks no TLS: the same status over HTTPS, where no client certificate is asked.
              assert.deepStrictEqual(
                container[kind]?.httpGet,
                { path: "/health", port: "http", scheme: "HTTPS" },
                `${container.name} ${kind}`
              )
              assert.strictEqual(server.tls.clientAuth, "rpc", `${container.name}: probes present no certificate`)
            }
          }
          assert.isAbove(
            preStopSeconds(container),
            0,
            `${container.name}: a preStop pause lets endpoint removal spread before SIGTERM`
          )
          // The pause, then the stop's own timeouts (the servers' drain, then e.g. the Kafka consumer's
          // batch in hand), with a margin for deregistering from discovery and closing connections.
          const grace = workload.pod.terminationGracePeriodSeconds ?? 30
          const stopping = Duration.toSeconds(result.stopTimeout!)
          assert.isAtLeast(
            grace,
            preStopSeconds(container) + stopping + 5,
            `${container.name}: preStop ${preStopSeconds(container)}s + stop ${stopping}s must fit in ${grace}s`
          )
        }
      })

      it("the ingestor Job's settings are ones its code reads, and hold", () => {
        for (const { container } of movieappContainers.filter((c) => !Programs.isService(c.image.target))) {
          const resolved = Manifests.resolveEnv(container, all)
          assert.deepStrictEqual(resolved.problems, [])
          assert.deepStrictEqual(Programs.checkIngestor(resolved.env), { unread: [], errors: [] }, container.name)
        }
      })

      it("every container exports its spans to the overlay's trace collector, an optional endpoint, sampling as the overlay says", () => {
        const endpoints = services.find((o) =>
          o.kind === "ConfigMap" && o.metadata.name.startsWith("movieapp-endpoints")
        )!
        const collector = endpoints.data.TRACING_ENDPOINT
        assert.strictEqual(
          collector,
          overlay === "production" ? "http://otel-collector.observability.svc.cluster.local:4318" : "http://jaeger:4318"
        )
        for (const { container, image } of movieappContainers) {
          const entry = (container.env as Array<any>).find((e) => e.name === "TRACING_ENDPOINT")
          assert.deepStrictEqual(
            entry?.valueFrom,
            { configMapKeyRef: { name: endpoints.metadata.name, key: "TRACING_ENDPOINT", optional: true } },
            container.name
          )
          // Production records one new trace in ten; the local cluster every one; an ingestion run is always recorded.
          const ratio = Programs.isService(image.target) ? (overlay === "production" ? 0.1 : 1) : 1
          assert.deepStrictEqual(Programs.tracing(Manifests.resolveEnv(container, all).env), {
            endpoint: Option.some(collector),
            sampleRatio: ratio
          }, container.name)
        }
      })

      it("an operator without a trace collector deletes the endpoint: every container still starts, with tracing off", () => {
        const withoutCollector = all.map((o) =>
          o.kind === "ConfigMap" && o.metadata.name.startsWith("movieapp-endpoints")
            ? {
              ...o,
              data: Object.fromEntries(
                Object.entries(o.data as Record<string, string>).filter(([key]) => key !== "TRACING_ENDPOINT")
              )
            }
            : o
        )
        for (const { container, image } of movieappContainers) {
          const resolved = Manifests.resolveEnv(container, withoutCollector)
          assert.deepStrictEqual(resolved.problems, [], container.name)
          assert.isFalse("TRACING_ENDPOINT" in resolved.env, container.name)
          assert.isTrue(Option.isNone(Programs.tracing(resolved.env)!.endpoint), container.name)
          const errors = Programs.isService(image.target)
            ? Programs.check(image.target as Programs.ServiceName, resolved.env).errors
            : Programs.checkIngestor(resolved.env).errors
          assert.deepStrictEqual(errors, [], container.name)
        }
      })

      if (overlay === "local") {
        it("the local overlay runs its infrastructure: every endpoint names a Service of the overlay, at one of its ports", () => {
          const endpoints = services.find((o) =>
            o.kind === "ConfigMap" && o.metadata.name.startsWith("movieapp-endpoints")
          )!
          const data = endpoints.data as Record<string, string>
          const hosts = Object.entries(data).filter(([key]) => !key.endsWith("_PORT")).flatMap(([key, value]) =>
            value.split(",").map((part) => {
              if (/^[a-z]+:\/\//.test(part)) {
                const url = new URL(part)
                return { key, host: url.hostname, port: url.port }
              }
              const [host, port] = part.split(":")
              return { key, host: host!, port: port ?? data[key.replace(/_HOST$/, "_PORT")] }
            })
          )
          assert.includeMembers(hosts.map((h) => h.key), ["MYSQL_HOST", "KAFKA_BROKERS", "TRACING_ENDPOINT"])
          for (const { key, host, port } of hosts) {
            const service = services.find((o) => o.kind === "Service" && o.metadata.name === host)
            assert.isDefined(service, `${key}: no Service ${host}`)
            assert.isTrue(
              service!.spec.ports.some((p: any) => String(p.port) === port),
              `${key}: Service ${host} has no port ${port}`
            )
          }
        })
      }

      it("infrastructure endpoints come from the one endpoints ConfigMap", () => {
        const endpoints = services.filter((o) =>
          o.kind === "ConfigMap" && o.metadata.name.startsWith("movieapp-endpoints")
        )
        assert.strictEqual(endpoints.length, 1)
        const keys = Object.keys(endpoints[0]!.data)
        assert.isAbove(keys.length, 0)
        for (const { container } of movieappContainers) {
          const { source } = Manifests.resolveEnv(container, all)
          for (const key of keys.filter((k) => k in source)) {
            assert.strictEqual(source[key], `ConfigMap/${endpoints[0]!.metadata.name}`, `${container.name} ${key}`)
          }
        }
        for (const key of keys) {
          assert.isTrue(
            movieappContainers.some(({ container }) => key in Manifests.resolveEnv(container, all).source),
            `no container uses the endpoint ${key}`
          )
        }
      })

      it("addresses of movieapp services in settings name a Service of the overlay and one of its ports", () => {
        // The gateway names its backends' headless Services (host:port); the rule holds for any setting
        // that will name one, and is proven on probes.
        const settingProblems = (containers: ReadonlyArray<any>) =>
          containers.flatMap((container) => {
            const { env, source } = Manifests.resolveEnv(container, all)
            return Object.entries(env).flatMap(([key, value]) => {
              // Infrastructure endpoints are outside the overlay. Addresses are URLs or host:port.
              const address = /^https?:\/\//.test(value)
                ? value
                : /^[a-z0-9.-]+:\d+$/.test(value)
                ? `tcp://${value}`
                : undefined
              // An issuer is a name tokens carry (often a URL), not an address anyone dials.
              if (address === undefined || key === "AUTH_ISSUER") return []
              if (source[key]?.startsWith("ConfigMap/movieapp-endpoints")) return []
              const url = new URL(address)
              const service = services.find((o) =>
                o.kind === "Service" && o.metadata.name === url.hostname.split(".")[0]
              )
              if (!service) return [`${container.name} ${key}=${value}: no Service ${url.hostname}`]
              return service.spec.ports.some((p: any) => String(p.port) === url.port)
                ? []
                : [`${container.name} ${key}=${value}: Service ${service.metadata.name} has no port ${url.port}`]
            })
          })
        assert.deepStrictEqual(settingProblems(movieappContainers.map((c) => c.container)), [])
        const probe = (name: string, value: string) => settingProblems([{ name: "probe", env: [{ name, value }] }])
        assert.deepStrictEqual(probe("RATING_ADDRESS", "rating-rpc:8072"), [])
        assert.deepStrictEqual(probe("RATING_ADDRESS", "rating-rpc.movieapp.svc.cluster.local:8072"), [])
        assert.lengthOf(probe("RATING_ADDRESS", "rating-rpc:9999"), 1)
        assert.lengthOf(probe("RATING_ADDRESS", "rating:8072"), 1)
        assert.deepStrictEqual(probe("METADATA_URL", "http://metadata:8091"), [])
        assert.lengthOf(probe("METADATA_URL", "http://metadata:9999"), 1)
      })

      it("the ingestor Job publishes to the Kafka topic the rating service consumes, through the same brokers", () => {
        const rating = serviceContainers.find((c) => c.image.target === "rating")!
        const job = movieappContainers.find((c) => c.image.target === "ratingingestor")!
        const consumes = Programs.ratingEventsFrom(Manifests.resolveEnv(rating.container, all).env)
        assert.strictEqual(consumes?.via, "kafka")
        assert.deepStrictEqual(
          Programs.ingestorPublishesTo(job.container.args, Manifests.resolveEnv(job.container, all).env),
          consumes
        )
      })

      it("the Kafka consumer's heap is set for a backlog's batches, and fits its memory limit with room to spare", () => {
        const rating = serviceContainers.find((c) => c.image.target === "rating")!.container
        const heapMiB = Number(
          /--max-old-space-size=(\d+)/.exec(Manifests.resolveEnv(rating, all).env.NODE_OPTIONS ?? "")?.[1]
        )
        const limit = /^(\d+)Mi$/.exec(rating.resources?.limits?.memory ?? "")
        assert.isDefined(limit, "rating: memory limit in Mi")
        // Node's own choice, a quarter of the limit, ran out of memory under a backlog (see rating.yaml).
        assert.isAtLeast(heapMiB, 192, "rating: NODE_OPTIONS --max-old-space-size")
        // Young generation, code and Kafka's and MySQL's buffers live beside the heap: measured 248 MB resident at 256.
        assert.isAtMost(heapMiB, Number(limit![1]) / 2, "rating: heap within half the memory limit")
      })

      it("every service sets its young generation (Node's own, derived from a small memory limit, doubles the CPU per call)", () => {
        for (const { container, image } of serviceContainers) {
          const semiSpace = /--max-semi-space-size=(\d+)/.exec(
            Manifests.resolveEnv(container, all).env.NODE_OPTIONS ?? ""
          )
          assert.isNotNull(semiSpace, `${image.target}: NODE_OPTIONS --max-semi-space-size`)
          assert.isAtLeast(Number(semiSpace![1]), 4, image.target)
        }
      })

      it("the gateway finds the backends' ready pods through headless Services of their Effect RPC port (DISCOVERY=dns)", () => {
        for (const { container } of serviceContainers) {
          assert.strictEqual(Manifests.resolveEnv(container, all).env.DISCOVERY, "dns", container.name)
        }
        const gateway = serviceContainers.find((c) => c.image.target === "movie")!
        const env = Manifests.resolveEnv(gateway.container, all).env
        for (const backend of ["metadata", "rating"] as const) {
          const [host, port] = env[`${backend.toUpperCase()}_ADDRESS`]!.split(":")
          const service = services.find((o) => o.kind === "Service" && o.metadata.name === host)
          assert.isDefined(service, `${backend}: no Service ${host}`)
          // Headless: the name resolves to every ready pod, not to one virtual address that would pin a long-lived connection.
          assert.strictEqual(service!.spec.clusterIP, "None", `${host} is headless`)
          assert.notStrictEqual(service!.spec.publishNotReadyAddresses, true, `${host} lists ready pods only`)
          const servicePort = (service!.spec.ports as Array<any>).find((p) => String(p.port) === port)
          assert.isDefined(servicePort, `${host} has no port ${port}`)
          const pods = serviceContainers.find((c) => c.image.target === backend)!
          assert.isTrue(
            Manifests.matches(service!.spec.selector, pods.workload.podLabels),
            `${host} selects the ${backend} pods`
          )
          const containerPort = (pods.container.ports as Array<any>).find((p) =>
            p.name === servicePort.targetPort || p.containerPort === servicePort.targetPort
          )
          assert.strictEqual(containerPort?.name, "rpc", `${host} targets the rpc port`)
          assert.strictEqual(
            String(containerPort?.containerPort),
            port,
            `${host}'s port is the one the pods serve Effect RPC on`
          )
          assert.strictEqual(Manifests.resolveEnv(pods.container, all).env.SERVER_RPC_PORT ?? port, port, backend)
        }
      })

      it("pods run as the image's unprivileged user, read-only, without privileges, service links or API token", () => {
        for (const { workload, container } of movieappContainers) {
          const pod = workload.pod
          assert.strictEqual(pod.securityContext?.runAsNonRoot, true)
          // The image's `node` user (Image.test.ts runs each image as this uid and asks it).
          assert.strictEqual(pod.securityContext?.runAsUser, 1000, container.name)
          assert.strictEqual(pod.securityContext?.seccompProfile?.type, "RuntimeDefault")
          // Service links inject <SERVICE>_PORT variables, which can collide with config keys (MYSQL_PORT).
          assert.strictEqual(pod.enableServiceLinks, false, container.name)
          assert.strictEqual(pod.automountServiceAccountToken, false, container.name)
          assert.strictEqual(container.securityContext?.readOnlyRootFilesystem, true)
          assert.strictEqual(container.securityContext?.allowPrivilegeEscalation, false)
          assert.deepStrictEqual(container.securityContext?.capabilities?.drop, ["ALL"])
          assert.isDefined(container.resources?.requests?.cpu, container.name)
          assert.isDefined(container.resources?.requests?.memory, container.name)
          assert.isDefined(container.resources?.limits?.memory, container.name)
        }
      })

      it("what the operator must create is named in docs/deployment.md; nothing else is missing", () => {
        const external = Manifests.workloads(all).flatMap(({ pod }) => [
          ...Manifests.externalVolumes(pod, all),
          ...(pod.containers as Array<any>).flatMap((c) => Manifests.resolveEnv(c, all).external)
        ])
        const names = [
          ...new Set(external.map((e) => `${e.kind} ${e.name}${"optional" in e && e.optional ? " (optional)" : ""}`))
        ].sort()
        assert.deepStrictEqual(
          names,
          overlay === "production"
            ? [
              "ConfigMap ratingingestor-events",
              "Secret metadata-tls",
              "Secret movie-tls",
              "Secret movieapp-auth",
              "Secret movieapp-mysql",
              "Secret rating-tls"
            ]
            : ["ConfigMap ratingingestor-events", "Secret movieapp-auth"]
        )
        for (const e of external) {
          assert.include(readme, e.name)
          if ("key" in e && e.key !== undefined) {
            assert.include(readme, `${e.key}=`, `docs/deployment.md shows how to set ${e.name} ${e.key}`)
          }
        }
      })
    })
  }
})
