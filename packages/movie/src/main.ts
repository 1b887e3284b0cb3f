/**
 * Composition root of the movie gateway: config, adapters, launch. Adapters the
 * configuration does not choose are never loaded, nor their libraries (undici):
 * those are imported here when chosen.
 */
import * as Discovery from "@movieapp/platform/Discovery"
import * as DiscoveryDns from "@movieapp/platform/DiscoveryDns"
import * as DiscoveryMemory from "@movieapp/platform/DiscoveryMemory"
import * as Launch from "@movieapp/platform/Launch"
import * as Logging from "@movieapp/platform/Logging"
import * as Readiness from "@movieapp/platform/Readiness"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Effect, Layer } from "effect"
import { MovieConfig } from "./MovieConfig.js"
import * as MovieServer from "./MovieServer.js"

const Main = Layer.unwrapEffect(
  Effect.gen(function*() {
    const config = yield* MovieConfig
    const discovery = config.discovery === "consul"
      ? Discovery.layerConsul
      : config.discovery === "dns"
      // The services the backend adapters call: METADATA_ADDRESS, RATING_ADDRESS.
      ? DiscoveryDns.layer(yield* DiscoveryDns.config(["metadata", "rating"]))
      : DiscoveryMemory.layer()
    return MovieServer.layer(config).pipe(
      Layer.provide(discovery),
      Layer.provide(Readiness.layer),
      Layer.provide([Logging.layer(config.log), Telemetry.layer(MovieServer.SERVICE_NAME, config.tracing)])
    )
  })
)

Launch.launch(Main)
