/**
 * The one way a service process runs: configuration from the environment over the
 * YAML file, the service's layer launched until SIGINT or SIGTERM, which close it
 * gracefully (deregister, stop accepting, drain, release).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, ConfigError, Effect, Layer } from "effect"
import * as PlatformConfig from "./Config.js"
import * as Logging from "./Logging.js"

/** Runs `service` until the process is told to stop; see {@link run}. */
export const launch = <A, E>(service: Layer.Layer<A, E, NodeContext.NodeContext>): void => run(Layer.launch(service))

/**
 * Runs `program` as the process, with the configuration provider and Node's
 * services. A failure ends the process with exit code 1 and one JSON line
 * ("failed; exiting") naming what to fix: an invalid setting by its variable, a
 * port in use by the setting that moves it.
 */
export const run = <A, E>(program: Effect.Effect<A, E, NodeContext.NodeContext>): void =>
  program.pipe(
    Effect.mapError((error) =>
      ConfigError.isConfigError(error) ? PlatformConfig.ConfigurationError.fromConfigError(error) : error
    ),
    Effect.provide(PlatformConfig.layerProvider),
    Effect.provide(NodeContext.layer),
    // Reported here rather than by runMain, so that a process that cannot even read
    // its settings still says why in one JSON line, like every other line it writes.
    Effect.tapErrorCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.void
        : Logging.withConsoleLoggerOnly(Effect.logError("failed; exiting", cause))
    ),
    NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
  )
