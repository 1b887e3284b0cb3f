/**
 * Executable health probe for container runtimes without a native gRPC probe
 * (Docker Compose, `docker run`): `node packages/platform/dist/GrpcHealthProbe.js [host:port]`.
 * Exits 0 when the server reports SERVING, 1 otherwise, with one line saying why.
 *
 * Without an address it asks the server configured in the same environment as
 * the service (`SERVER_GRPC_PORT`, `SERVER_HOST`, or the `CONFIG_FILE`), so the
 * probe follows the service's port instead of repeating it.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Config, Console, Effect, Layer } from "effect"
import * as PlatformConfig from "./Config.js"
import * as GrpcHealth from "./GrpcHealth.js"

const configuredAddress = Config.all({
  host: Config.string("host").pipe(Config.withDefault("0.0.0.0")),
  port: Config.port("grpcPort")
}).pipe(
  Config.nested("server"),
  // A wildcard bind is reachable on loopback from inside the container.
  Config.map(({ host, port }) => `${host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host}:${port}`)
)

const probe = Effect.gen(function*() {
  const address = process.argv[2] ?? (yield* configuredAddress)
  const status = yield* GrpcHealth.check(address, "", { deadlineMs: 3000 }).pipe(
    Effect.mapError((error) => `${address}: ${error.message}`)
  )
  if (status !== "SERVING") return yield* Effect.fail(`${address}: ${status}`)
  yield* Console.log(`${address}: SERVING`)
})

probe.pipe(
  Effect.tapErrorCause((cause) => {
    const error = Cause.squash(cause)
    return Console.error(`health probe: ${error instanceof Error ? error.message : String(error)}`)
  }),
  Effect.provide(PlatformConfig.layerProvider.pipe(Layer.provide(NodeContext.layer))),
  NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true })
)
