/**
 * Executable health probe for container runtimes without a native gRPC probe
 * (Docker Compose, `docker run`): `node packages/platform/dist/GrpcHealthProbe.js [host:port]`.
 * Exits 0 when the server reports SERVING, 1 otherwise, with one line saying why.
 *
 * Without an address it asks the server configured in the same environment as
 * the service (`SERVER_GRPC_PORT`, `SERVER_HOST`, or the `CONFIG_FILE`), so the
 * probe follows the service's port instead of repeating it. With `SERVER_TLS_*`
 * it speaks TLS and presents the service's own certificate (which a server that
 * demands client certificates accepts); it does not verify the server's, which
 * is the process beside it, reached on loopback under a name its certificate
 * need not hold.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as grpc from "@grpc/grpc-js"
import { Cause, Config, Console, Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
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

const credentials = Config.map(PlatformConfig.tls.pipe(Config.nested("server")), (tls) => {
  if (tls === undefined) return undefined
  return grpc.credentials.createSsl(null, readFileSync(tls.keyFile), readFileSync(tls.certFile), {
    rejectUnauthorized: false
  })
})

const probe = Effect.gen(function*() {
  const address = process.argv[2] ?? (yield* configuredAddress)
  const status = yield* GrpcHealth.check(address, "", {
    deadlineMs: 3000,
    credentials: yield* credentials,
    serverName: "localhost"
  }).pipe(
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
