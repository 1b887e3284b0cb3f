/**
 * Graceful stop: SIGTERM and SIGINT end a service process cleanly, and closing a
 * service lets an in-flight call finish while the instance leaves discovery.
 */
import { assert, describe, it } from "@effect/vitest"
import { Metadata, type MovieId } from "@movieapp/contracts/Metadata"
import * as MetadataRepositoryMemory from "@movieapp/metadata/adapters/MetadataRepositoryMemory"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import { MetadataRepository } from "@movieapp/metadata/ports/MetadataRepository"
import { Discovery } from "@movieapp/platform/Discovery"
import * as DiscoveryMemory from "@movieapp/platform/DiscoveryMemory"
import * as Readiness from "@movieapp/platform/Readiness"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as ServiceProcess from "@movieapp/testkit/ServiceProcess"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Logger, LogLevel, Scope } from "effect"
import { connect, type Socket } from "node:net"

/** Starts a service's main on ephemeral ports, waits until it is registered, signals it, returns its exit and logs. */
const runAndSignal = (main: string, signal: NodeJS.Signals) =>
  Effect.scoped(Effect.gen(function*() {
    const service = yield* ServiceProcess.start(main, {
      ...(yield* Tokens.serviceEnv),
      SERVER_HOST: "127.0.0.1",
      SERVER_GRPC_PORT: "0",
      SERVER_HTTP_PORT: "0",
      SERVER_RPC_PORT: "0"
    })
    yield* service.awaitLog((line) => line.message === "registered")
    yield* service.kill(signal)
    const { code } = yield* service.exited
    return { code, logs: service.logs() }
  })).pipe(
    Effect.provide(Tokens.layer),
    Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`${main} did not stop after ${signal}`) })
  )

describe("graceful stop", () => {
  for (const [service, signal] of [["metadata", "SIGTERM"], ["rating", "SIGINT"], ["movie", "SIGTERM"]] as const) {
    it.live(`${service} process: ${signal} deregisters, stops the servers, exits 0`, () =>
      Effect.gen(function*() {
        const { code, logs } = yield* runAndSignal(`packages/${service}/src/main.ts`, signal)
        const messages = logs.map((l) => l.message)
        assert.strictEqual(code, 0, messages.join(" | "))
        const deregistered = messages.indexOf("deregistered")
        const stopped = messages.indexOf("gRPC server stopped")
        assert.isAbove(deregistered, -1, messages.join(" | "))
        assert.isAbove(stopped, deregistered, "deregistered before the servers stop")
      }))
  }

  it.live("closing a service drains the in-flight call and deregisters", () =>
    Effect.gen(function*() {
      const discovery = yield* DiscoveryMemory.make()
      const entered = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      // Test double of the repository port: reads of "held" wait until the test releases them.
      const HeldRepository = Layer.effect(
        MetadataRepository,
        Effect.map(MetadataRepositoryMemory.make, (memory) =>
          MetadataRepository.of({
            ...memory,
            get: (id) =>
              id === "held"
                ? Deferred.succeed(entered, undefined).pipe(
                  Effect.zipRight(Deferred.await(release)),
                  Effect.zipRight(memory.get(id))
                )
                : memory.get(id)
          }))
      )
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        MetadataServer.layer({
          host: "127.0.0.1",
          grpcPort: 0,
          httpPort: 0,
          advertiseHost: "127.0.0.1",
          shutdownTimeout: Duration.seconds(10)
        }).pipe(
          Layer.provideMerge(HeldRepository),
          Layer.provide([Layer.succeed(Discovery, discovery), Readiness.layer, Tokens.layerWriteAccess]),
          Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
        ),
        scope
      )
      const ports = Context.get(context, MetadataServer.Ports)
      yield* Effect.provide(
        Effect.flatMap(MetadataRepository, (r) =>
          r.put(new Metadata({ id: "held" as MovieId, title: "Held", description: "", director: "" }))),
        context
      )
      assert.strictEqual((yield* discovery.healthy("metadata")).length, 1)

      const inFlight = yield* Effect.fork(Effect.scoped(Effect.flatMap(
        Grpc.client(v1Metadata.MetadataServiceClient, `127.0.0.1:${ports.grpc}`),
        (client) =>
          Grpc.call(Grpc.method(client, "getMetadata"), { movieId: "held" })
      )))
      yield* Deferred.await(entered)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      // Out of discovery before the call is allowed to finish: callers stop picking this instance first.
      yield* discovery.healthy("metadata").pipe(Effect.repeat({ until: (instances) => instances.length === 0 }))
      assert.isNull(closing.unsafePoll())
      yield* Deferred.succeed(release, undefined)
      const answer = yield* Fiber.join(inFlight)
      assert.strictEqual(answer.metadata?.title, "Held")
      yield* Fiber.join(closing)
    }))

  it.live("a stalled HTTP client cannot hold a stop past the shutdown timeout", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        MetadataServer.layer({
          host: "127.0.0.1",
          grpcPort: 0,
          httpPort: 0,
          advertiseHost: "127.0.0.1",
          shutdownTimeout: Duration.millis(500)
        }).pipe(
          Layer.provide([
            MetadataRepositoryMemory.layer,
            DiscoveryMemory.layer(),
            Readiness.layer,
            Tokens.layerWriteAccess
          ]),
          Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
        ),
        scope
      )
      const { http } = Context.get(context, MetadataServer.Ports)
      // Half a request: the server waits for the rest of the header forever.
      const socket = yield* Effect.async<Socket>((resume) => {
        const s = connect(http, "127.0.0.1", () => resume(Effect.succeed(s)))
      })
      socket.write("GET /metadata?id=1 HTTP/1.1\r\nHost: x\r\n")
      // Listened for now: the cut may come while the stop is still under way.
      const cut = yield* Deferred.make<void>()
      socket.once("close", () => Deferred.unsafeDone(cut, Exit.void))
      const closed = Deferred.await(cut)
      yield* Scope.close(scope, Exit.void).pipe(
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("stop hung on a stalled HTTP client") })
      )
      yield* closed.pipe(
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("stalled connection left open") })
      )
    }))
})
