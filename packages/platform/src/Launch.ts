/**
 * The one way a service process runs: configuration from the environment over the
 * YAML file, the service's layer launched until SIGINT or SIGTERM, which close it
 * gracefully (deregister, stop accepting, drain, release).
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Layer } from "effect"
import * as PlatformConfig from "./Config.js"

export const launch = <A, E>(service: Layer.Layer<A, E>): void =>
  service.pipe(
    Layer.provide(PlatformConfig.layerProvider),
    Layer.provide(NodeContext.layer),
    Layer.launch,
    NodeRuntime.runMain({ disablePrettyLogger: true })
  )
