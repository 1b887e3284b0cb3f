/**
 * The images, built by a real Docker engine from deploy/Dockerfile (the four
 * targets in one go: `docker compose -f deploy/compose.yaml -f
 * deploy/compose.host.yaml build`) and run by it: what they hold, and each
 * container started as the Kubernetes production overlay starts it (its command,
 * settings, user, read-only root, no capabilities, memory limit), only its
 * addresses moved to this machine (MariaDB, the Kafka broker, an OTLP/HTTP
 * receiver for the trace collector, the backends' headless Services as their
 * loopback addresses) and on the host's network: the services become SERVING,
 * run the original scenario, store the events the ingestor Job publishes to
 * Kafka, answer through the gateway, stop on SIGTERM within their grace period
 * with exit code 0, and have exported their spans.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import * as DevelopmentTokens from "@movieapp/platform/DevelopmentTokens"
import * as Certificates from "@movieapp/testkit/Certificates"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as TestKafka from "@movieapp/testkit/Kafka"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import * as OtlpReceiver from "@movieapp/testkit/OtlpReceiver"
import * as Poll from "@movieapp/testkit/Poll"
import * as Ports from "@movieapp/testkit/Ports"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Compose from "./Compose.js"
import * as Deployed from "./Deployed.js"
import * as Docker from "./Docker.js"
import * as Kustomize from "./Kustomize.js"
import type { K8sObject } from "./Kustomize.js"
import * as Manifests from "./Manifests.js"
import * as Programs from "./Programs.js"
import { repo } from "./Repo.js"

// Each checked, so that in CI a missing one fails rather than skips.
const withEngine = await Docker.engineAvailable()
const withInfrastructure = [await MariaDb.available(), await TestKafka.available()].every(Boolean)
const withManifests = Kustomize.available()

const dockerfileBase = fs.readFileSync(path.join(repo, "deploy/Dockerfile"), "utf8").match(/^FROM (\S+) AS base$/m)?.[1]

let workspace: string

beforeAll(async () => {
  if (!withEngine) return
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), "movieapp-image-"))
  await Effect.runPromise(Effect.gen(function*() {
    yield* Compose.compose(Compose.onHost, ["build"])
    const base = yield* Docker.imageSize(dockerfileBase!)
    const sizes = yield* Effect.forEach(Deployed.targets, (target) => Docker.imageSize(Deployed.image(target)))
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`
    // Printed for docs/deployment.md's figures: what the four images weigh, and what of it is movieapp's.
    console.log(
      `image sizes: ${Deployed.targets.map((t, i) => `${Deployed.image(t)} ${mb(sizes[i]!)}`).join(", ")}; ` +
        `base ${dockerfileBase} ${mb(base)}, movieapp's layers ${mb(Math.max(...sizes) - base)} (shared by the four)`
    )
  }))
}, 900_000)

afterAll(async () => {
  if (workspace) await fs.promises.rm(workspace, { recursive: true, force: true })
})

/** Run inside an image: what it holds, as JSON. */
const survey = `
const fs = require("fs"), path = require("path")
const files = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
  e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)])
console.log(JSON.stringify({
  node: process.version,
  uid: process.getuid(),
  env: process.env.NODE_ENV,
  workspaces: fs.readdirSync("packages"),
  files: files("."),
  owner: fs.statSync("packages/rating/dist/main.js").uid
}))`

describe.runIf(withEngine)("the images", () => {
  it.effect("hold Node.js of the Dockerfile's FROM and the four programs bundled (scripts/bundle.ts), with the files they read at run time and no packages; run as node (uid 1000); owned by root", () =>
    Effect.gen(function*() {
      const result = yield* Docker.runToEnd([Deployed.image("rating"), "node", "-e", survey])
      assert.strictEqual(result.code, 0, result.output)
      const image = JSON.parse(result.output)
      assert.strictEqual(
        `node:${image.node.slice(1)}-bookworm-slim`,
        dockerfileBase,
        "Node.js of the base image the Dockerfile names"
      )
      assert.strictEqual(Number(image.node.slice(1).split(".")[0]), 24)
      assert.strictEqual(image.uid, 1000)
      assert.strictEqual(image.owner, 0, "the program cannot change its own files")
      assert.strictEqual(image.env, "production")
      assert.deepStrictEqual(image.workspaces.sort(), ["metadata", "movie", "platform", "rating", "ratingingestor"])
      const files = image.files as Array<string>
      const allowed = [
        /^package\.json$/, // "type": "module"
        /^packages\/(metadata|movie|rating)\/package\.json$/, // the services' versions, shown at GET /
        /^node_modules\/grpc-health-check\/package\.json$/, // where GrpcHealth finds the health service's definition
        /^packages\/[a-z]+\/dist\/[\w.-]+\.js(\.LEGAL\.txt)?$/, // bundles, their chunks, their license notices
        /^schema\/.+\.sql$/,
        /^node_modules\/.+\.proto$/ // the gRPC health and reflection services' definitions
      ]
      assert.deepStrictEqual(
        files.filter((f) => !allowed.some((pattern) => pattern.test(f))),
        [],
        "only bundles and the files they read"
      )
      for (const target of Deployed.targets) assert.include(files, `packages/${target}/dist/main.js`)
      assert.include(files, "packages/platform/dist/GrpcHealthProbe.js")
      assert.include(files, "node_modules/grpc-health-check/proto/health/v1/health.proto")
      assert.include(files, "schema/rating/0001_create_ratings.sql")
      assert.include(files, "schema/metadata/0001_create_movies.sql")
      // One image's files are every image's: the targets differ in their command only.
      const layers = yield* Effect.forEach(
        Deployed.targets,
        (target) => Docker.run(["image", "inspect", "--format", "{{json .RootFS.Layers}}", Deployed.image(target)])
      )
      assert.strictEqual(new Set(layers).size, 1)
    }))

  it.effect("the health probe reports a server that does not answer", () =>
    Effect.gen(function*() {
      const port = yield* Ports.free
      const result = yield* Docker.runToEnd([
        "--env",
        `SERVER_GRPC_PORT=${port}`,
        Deployed.image("metadata"),
        "node",
        "packages/platform/dist/GrpcHealthProbe.js"
      ])
      assert.strictEqual(result.code, 1)
      assert.include(result.output, `127.0.0.1:${port}`)
    }))

  describe.runIf(withManifests)("as the Kubernetes manifests run them", () => {
    const rendered = withManifests ? Manifests.render("production") : undefined
    const objects = rendered ? [...rendered.services, ...rendered.ingest] : []
    const containers = Manifests.workloads(objects).flatMap((workload) =>
      (workload.pod.containers as Array<any>).map((container) => ({
        workload,
        container,
        target: Manifests.movieappImage(container.image)!.target as Deployed.Target
      }))
    )

    it.effect("each container is the image of its name, run by node itself (PID 1, exec form) with the image's own command, as the pod's user", () =>
      Effect.gen(function*() {
        assert.sameMembers(containers.map((c) => c.target), [...Deployed.targets])
        for (const { workload, container, target } of containers) {
          assert.strictEqual(container.name, target)
          assert.isUndefined(container.command, `${target} keeps the image's ENTRYPOINT`)
          const config = yield* Docker.imageConfig(Deployed.image(target))
          const argv = [...(config.Entrypoint ?? []), ...(container.args ?? config.Cmd ?? [])]
          assert.deepStrictEqual(argv.slice(0, 2), ["node", `packages/${target}/dist/main.js`], target)
          if (Programs.isService(target)) assert.isUndefined(container.args, `${target} keeps the image's CMD`)
          else assert.isAbove(container.args?.length ?? 0, 0, "the ingestor needs its file")
          // The image's user is the uid the pod runs as.
          const uid = yield* Docker.runToEnd(["--entrypoint", "id", Deployed.image(target), "-u"])
          assert.strictEqual(Number(uid.output), workload.pod.securityContext?.runAsUser, target)
        }
      }))

    /** `docker run` options for what the pod and container specs ask of the runtime. */
    const runtimeOptions = (workload: Manifests.Workload, container: any): Array<string> => {
      const pod = workload.pod.securityContext ?? {}
      const own = container.securityContext ?? {}
      return [
        ...(pod.runAsUser === undefined
          ? []
          : ["--user", pod.runAsGroup === undefined ? String(pod.runAsUser) : `${pod.runAsUser}:${pod.runAsGroup}`]),
        ...(own.readOnlyRootFilesystem ? ["--read-only"] : []),
        ...(own.allowPrivilegeEscalation === false ? ["--security-opt", "no-new-privileges"] : []),
        ...((own.capabilities?.drop ?? []) as Array<string>).flatMap((c) => ["--cap-drop", c]),
        ...(container.resources?.limits?.memory
          ? ["--memory", String(container.resources.limits.memory).replace(/i$/, "")]
          : [])
      ]
    }

    /** The deployment's environment with only its addresses moved to this machine (see Deployed.standIns). */
    const onThisMachine = (
      container: any,
      objects: ReadonlyArray<K8sObject>,
      here: Deployed.ThisMachine,
      listening: Readonly<Record<string, Deployed.Listening>>,
      listen: Deployed.Listening | undefined
    ) => {
      const resolved = Manifests.resolveEnv(container, objects)
      const infrastructure = Object.entries(resolved.source)
        .filter(([, source]) => source.startsWith("ConfigMap/movieapp-endpoints") || source.startsWith("Secret/"))
        .map(([key]) => key)
      const local = Deployed.standIns(here)
      for (const key of infrastructure) {
        assert.property(local, key, `no stand-in on this machine for ${key}: add one to Deployed.standIns`)
      }
      const env: Record<string, string> = { ...resolved.env }
      for (const [key, value] of Object.entries(local)) if (key in env) env[key] = value
      if ("KAFKA_BROKERS" in env) Object.assign(env, Deployed.kafkaNames(here.kafka))
      // A backend's headless Service (METADATA_ADDRESS=metadata-rpc:8071) is its pod's Effect RPC listener here.
      for (const [service, ports] of Object.entries(listening)) {
        const key = `${service.toUpperCase()}_ADDRESS`
        if (key in env && ports.rpc !== undefined) env[key] = `127.0.0.1:${ports.rpc}`
      }
      if (listen) {
        Object.assign(env, {
          SERVER_HOST: "127.0.0.1",
          SERVER_ADVERTISE_HOST: "127.0.0.1",
          ...Deployed.portSettings("SERVER_", listen)
        })
      }
      return Object.entries(env).flatMap(([key, value]) => ["--env", `${key}=${value}`])
    }

    const preStopSeconds = (container: any): number => {
      const argv: Array<string> | undefined = container.lifecycle?.preStop?.exec?.command
      return Number(container.lifecycle?.preStop?.sleep?.seconds ?? (argv?.[0] === "sleep" ? argv[1] : 0))
    }

    it.live.runIf(withInfrastructure)(
      "the production overlay's containers become SERVING, run the original scenario, store the events the Job publishes to Kafka, answer through the gateway, stop on SIGTERM within their grace period with exit code 0, and have sent their traces",
      () =>
        Effect.gen(function*() {
          const deployed = objects
          const here = Deployed.machine(yield* MariaDb.TestDatabase, yield* OtlpReceiver.make())
          const listening = {} as Record<(typeof Deployed.services)[number], Deployed.Listening>
          for (const name of Deployed.services) listening[name] = yield* Deployed.freePorts(name)
          const prefix = `movieapp-test-${Math.random().toString(36).slice(2, 8)}`

          const services = containers.filter((c) => Programs.isService(c.target))
          // The Secret movieapp-auth (key public.pem): this test's key, readable by the image's user.
          const tokens = yield* DevelopmentTokens.make
          const auth = path.join(workspace, "movieapp-auth")
          fs.mkdirSync(auth, { recursive: true, mode: 0o755 })
          fs.copyFileSync(tokens.verifier.key.path, path.join(auth, "public.pem"))
          fs.chmodSync(path.join(auth, "public.pem"), 0o644)
          const authMount = (workload: Manifests.Workload, container: any): Array<string> => {
            const mount = (container.volumeMounts ?? []).find((m: any) =>
              workload.pod.volumes?.find((v: any) => v.name === m.name)?.secret?.secretName === "movieapp-auth"
            )
            return mount === undefined ? [] : ["--volume", `${auth}:${mount.mountPath}:ro`]
          }
          // The TLS Secrets (<service>-tls: tls.crt, tls.key, ca.crt) where the overlay mounts them:
          // certificates of this test's own CA, naming each service; its clients trust that CA.
          const authority = yield* Certificates.authority()
          const tlsMounts = new Map<string, Array<string>>()
          for (const { workload, container, target } of services) {
            const mount = (container.volumeMounts ?? []).find((m: any) =>
              workload.pod.volumes?.find((v: any) => v.name === m.name)?.secret?.secretName === `${target}-tls`
            )
            if (mount === undefined) continue
            const issued = yield* authority.issue(target)
            const dir = path.join(workspace, `${target}-tls`)
            fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
            for (
              const [from, to] of [[issued.certFile, "tls.crt"], [issued.keyFile, "tls.key"], [
                authority.caFile,
                "ca.crt"
              ]]
            ) {
              fs.copyFileSync(from!, path.join(dir, to!))
              fs.chmodSync(path.join(dir, to!), 0o644)
            }
            tlsMounts.set(target, ["--volume", `${dir}:${mount.mountPath}:ro`])
            const key = target as keyof typeof listening
            listening[key] = {
              ...listening[key],
              credentials: grpc.credentials.createSsl(fs.readFileSync(authority.caFile))
            }
          }
          const metadataContainer = services.find((c) => c.target === "metadata")!.container
          const sign = Deployed.signer(tokens, Manifests.resolveEnv(metadataContainer, deployed).env)
          const running = new Map<string, string>()
          for (const { workload, container, target } of services) {
            running.set(
              target,
              yield* Docker.runDetached([
                "--name",
                `${prefix}-${target}`,
                ...runtimeOptions(workload, container),
                ...onThisMachine(container, deployed, here, listening, listening[target as keyof typeof listening]),
                ...authMount(workload, container),
                ...(tlsMounts.get(target) ?? []),
                Deployed.image(target)
              ])
            )
          }
          for (const [target, id] of running) {
            // The startup and readiness probes (the manifest suite checks they are on the configured gRPC port).
            yield* Docker.whileRunning(
              id,
              Poll.until(Deployed.serving(listening[target as keyof typeof listening]), () => true, {
                what: `${target} to be SERVING`,
                interval: "200 millis"
              })
            )
            yield* Deployed.confined(id, target)
            // Server reflection reads its own .proto files: the image holds them.
            const listed = yield* Grpc.reflect(`127.0.0.1:${listening[target as keyof typeof listening].grpc}`, {
              listServices: "*"
            }, listening[target as keyof typeof listening].credentials)
            assert.include(
              listed.listServicesResponse.service.map((s: { name: string }) => s.name),
              "grpc.health.v1.Health",
              target
            )
            assert.deepStrictEqual((yield* Docker.processArgv(id)).slice(0, 2), [
              "node",
              `packages/${target}/dist/main.js`
            ], `${target}: node is PID 1`)
          }
          yield* Deployed.originalScenario(listening, sign)

          // The Job, its ConfigMap volume `ratingingestor-events` (key ratings.json) as a read-only mount.
          const job = containers.find((c) => c.target === "ratingingestor")!
          const events = path.join(workspace, "ratingingestor-events")
          fs.mkdirSync(events, { recursive: true, mode: 0o755 })
          fs.copyFileSync(path.join(Deployed.sample, "ratings.json"), path.join(events, "ratings.json"))
          const mount = job.container.volumeMounts.find((m: any) =>
            job.workload.pod.volumes.find((v: any) => v.name === m.name)?.configMap?.name === "ratingingestor-events"
          )
          const result = yield* Docker.runToEnd([
            ...runtimeOptions(job.workload, job.container),
            ...onThisMachine(job.container, deployed, here, listening, undefined),
            "--volume",
            `${events}:${mount.mountPath}:ro`,
            Deployed.image("ratingingestor"),
            ...job.container.args
          ])
          assert.strictEqual(result.code, 0, result.output)
          assert.match(result.output, /read 452, published 452, skipped 0/)
          yield* Deployed.ratingsLanded(listening.rating)

          yield* Deployed.loadCatalog(listening.metadata, sign)
          yield* Deployed.gatewayAnswers(listening.movie)
          const caller = yield* Deployed.tracedCall(listening.movie)

          // SIGTERM, then SIGKILL once the grace period (less the preStop pause that precedes SIGTERM) has passed.
          for (const { workload, container, target } of services.reverse()) {
            const id = running.get(target)!
            yield* Docker.run([
              "stop",
              "--time",
              String(workload.pod.terminationGracePeriodSeconds - preStopSeconds(container)),
              id
            ])
            yield* Deployed.stoppedCleanly(id, target)
          }
          Deployed.tracesExported(here.otlp, caller)
        }).pipe(Effect.scoped, Effect.provide([MariaDb.layerTestDatabase, NodeFileSystem.layer])),
      300_000
    )
  })
})
