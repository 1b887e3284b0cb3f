/**
 * Readiness drives gRPC health: a service reports NOT_SERVING while any check a
 * dependency registered fails (or does not answer in time), and SERVING again
 * once all pass. The database's check is tested against a real MariaDB outage in
 * the rating service's suite; here a check a test controls stands for any
 * dependency (a broker, say), registered the way its adapter would.
 */
import { assert, describe, it } from "@effect/vitest"
import * as MetadataRepositoryMemory from "@movieapp/metadata/adapters/MetadataRepositoryMemory"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as DiscoveryMemory from "@movieapp/platform/DiscoveryMemory"
import * as Readiness from "@movieapp/platform/Readiness"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Duration, Effect, Layer, Logger, LogLevel, Ref, Schedule } from "effect"

type Dependency = "up" | "down" | "hanging"

/** The server's health over HTTP (`GET /health`): its status code and body. */
type HttpHealth = Effect.Effect<{ readonly status: number; readonly body: unknown }>

const withServer = <A, E>(
  dependency: Ref.Ref<Dependency>,
  f: (health: (service: string) => Effect.Effect<string, unknown>, httpHealth: HttpHealth) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const { grpc, http } = yield* MetadataServer.Ports
    const httpHealth: HttpHealth = Effect.promise(async () => {
      const response = await fetch(`http://127.0.0.1:${http}/health`)
      return { status: response.status, body: await response.json() }
    })
    return yield* f((service) => Grpc.healthCheck(`127.0.0.1:${grpc}`, service), httpHealth)
  }).pipe(
    Effect.provide(
      MetadataServer.layer({
        host: "127.0.0.1",
        grpcPort: 0,
        httpPort: 0,
        advertiseHost: "127.0.0.1",
        shutdownTimeout: Duration.seconds(5),
        healthCheckInterval: Duration.millis(50),
        healthCheckTimeout: Duration.millis(200)
      }).pipe(
        Layer.provide([MetadataRepositoryMemory.layer, DiscoveryMemory.layer(), Tokens.layerWriteAccess]),
        Layer.provide(Readiness.layerCheck(
          "broker",
          Effect.flatMap(Ref.get(dependency), (state) =>
            state === "up"
              ? Effect.void
              : state === "down"
              ? Effect.fail(new Error("connection refused"))
              : Effect.never)
        )),
        Layer.provide(Readiness.layer),
        Layer.provide(Logger.minimumLogLevel(LogLevel.Error))
      )
    )
  )

const services = ["", "MetadataService", "movieapp.v1.MetadataService"]

/** Waits (bounded) until the server and each of its services report `status`. */
const becomes = (health: (service: string) => Effect.Effect<string, unknown>, status: string) =>
  Effect.forEach(services, (service) =>
    health(service).pipe(
      Effect.repeat({ until: (s) => s === status, schedule: Schedule.spaced("20 millis") }),
      Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`"${service}" never became ${status}`) })
    ))

describe("readiness", () => {
  it.live("SERVING once its dependency answers at start; NOT_SERVING while it fails or hangs; SERVING when it is back", () =>
    Effect.gen(function*() {
      const dependency = yield* Ref.make<Dependency>("up")
      yield* withServer(dependency, (health) =>
        Effect.gen(function*() {
          for (const service of services) assert.strictEqual(yield* health(service), "SERVING", service)
          yield* Ref.set(dependency, "down")
          yield* becomes(health, "NOT_SERVING")
          yield* Ref.set(dependency, "up")
          yield* becomes(health, "SERVING")
          yield* Ref.set(dependency, "hanging")
          yield* becomes(health, "NOT_SERVING")
          yield* Ref.set(dependency, "up")
          yield* becomes(health, "SERVING")
        }))
    }))

  it.live("a service whose dependency is down when it starts is NOT_SERVING from its first answer, over HTTP too", () =>
    Effect.gen(function*() {
      const dependency = yield* Ref.make<Dependency>("down")
      yield* withServer(dependency, (health, httpHealth) =>
        Effect.gen(function*() {
          for (const service of services) assert.strictEqual(yield* health(service), "NOT_SERVING", service)
          assert.deepStrictEqual(yield* httpHealth, { status: 503, body: { status: "NOT_SERVING" } })
          yield* Ref.set(dependency, "up")
          yield* becomes(health, "SERVING")
          assert.deepStrictEqual(yield* httpHealth, { status: 200, body: { status: "SERVING" } })
        }))
    }))

  it.effect("a check registered by a layer is withdrawn when that layer closes", () =>
    Effect.gen(function*() {
      const readiness = yield* Readiness.Readiness
      const during = yield* Effect.scoped(Effect.zipRight(
        Layer.build(Readiness.layerCheck("db", Effect.fail(new Error("refused")))),
        readiness.check("1 second")
      ))
      assert.deepStrictEqual(during, [{ name: "db", reason: "refused" }])
      assert.deepStrictEqual(yield* readiness.check("1 second"), [])
    }).pipe(Effect.provide(Readiness.layer)))
})
