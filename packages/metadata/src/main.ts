/**
 * Composition root of the metadata service: config, adapters, launch. Adapters
 * the configuration does not choose are never loaded, nor their libraries
 * (mysql2, undici): those are imported here when chosen.
 */
import * as Discovery from "@movieapp/platform/Discovery"
import * as DiscoveryDns from "@movieapp/platform/DiscoveryDns"
import * as DiscoveryMemory from "@movieapp/platform/DiscoveryMemory"
import * as Launch from "@movieapp/platform/Launch"
import * as Logging from "@movieapp/platform/Logging"
import * as Readiness from "@movieapp/platform/Readiness"
import * as Telemetry from "@movieapp/platform/Telemetry"
import * as TokenVerifierJose from "@movieapp/platform/TokenVerifierJose"
import { Effect, Layer } from "effect"
import * as MetadataRepositoryMemory from "./adapters/MetadataRepositoryMemory.js"
import { MetadataConfig } from "./MetadataConfig.js"
import * as MetadataServer from "./MetadataServer.js"

const Main = Layer.unwrapEffect(
  Effect.gen(function*() {
    const config = yield* MetadataConfig
    const repository = config.repository === "mysql"
      ? yield* Effect.gen(function*() {
        const [Mysql, MetadataRepositoryMysql] = yield* Effect.promise(() =>
          Promise.all([import("@movieapp/platform/Mysql"), import("./adapters/MetadataRepositoryMysql.js")])
        )
        return MetadataRepositoryMysql.layer.pipe(
          Layer.provide(Mysql.layer(yield* Mysql.config, MetadataRepositoryMysql.migrations))
        )
      })
      : MetadataRepositoryMemory.layer
    const discovery = config.discovery === "consul"
      ? Discovery.layerConsul
      : config.discovery === "dns"
      // Calls no other service: nothing to resolve, and the platform lists this one.
      ? DiscoveryDns.layer(yield* DiscoveryDns.config([]))
      : DiscoveryMemory.layer()
    const writes = TokenVerifierJose.layerWriteAccess(config.auth, config.rateLimit)
    return MetadataServer.layer(config.server).pipe(
      Layer.provide([repository, discovery, writes]),
      Layer.provide(Readiness.layer),
      Layer.provide([Logging.layer(config.log), Telemetry.layer(MetadataServer.SERVICE_NAME, config.tracing)])
    )
  })
)

Launch.launch(Main)
