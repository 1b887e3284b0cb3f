/**
 * The one way a service process runs: configuration from the environment over the
 * YAML file, the service's layer launched until SIGINT or SIGTERM, which close it
 * gracefully (deregister, stop accepting, drain, release).
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, ConfigError, Effect, Layer } from "effect"
import * as PlatformConfig from "./Config.js"
import * as Logging from "./Logging.js"

export const launch = <A, E>(service: Layer.Layer<A, E>): void =>
  service.pipe(
    Layer.mapError((error) => ConfigError.isConfigError(error) ? PlatformConfig.ConfigurationError.fromConfigError(error) : error),
    Layer.provide(PlatformConfig.layerProvider),
    Layer.provide(NodeContext.layer),
    Layer.launch,
    // Reported here rather than by runMain, so that a process that cannot even read
    // its settings still says why in one JSON line, like every other line it writes.
    Effect.tapErrorCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Logging.withConsoleLoggerOnly(Effect.logError("failed; exiting", cause))),
    NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
  )
