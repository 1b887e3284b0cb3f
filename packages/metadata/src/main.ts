/** Composition root of the metadata service: config, adapters, launch. */
import { NodeHttpClient } from "@effect/platform-node"
import * as DiscoveryConsul from "@movieapp/platform/DiscoveryConsul"
import * as DiscoveryDns from "@movieapp/platform/DiscoveryDns"
import * as DiscoveryMemory from "@movieapp/platform/DiscoveryMemory"
import * as Launch from "@movieapp/platform/Launch"
import * as Logging from "@movieapp/platform/Logging"
import * as Mysql from "@movieapp/platform/Mysql"
import * as Readiness from "@movieapp/platform/Readiness"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Effect, Layer } from "effect"
import * as MetadataRepositoryMemory from "./adapters/MetadataRepositoryMemory.js"
import * as MetadataRepositoryMysql from "./adapters/MetadataRepositoryMysql.js"
import { MetadataConfig } from "./MetadataConfig.js"
import * as MetadataServer from "./MetadataServer.js"

const Main = Layer.unwrapEffect(
  Effect.gen(function*() {
    const config = yield* MetadataConfig
    const repository = config.repository === "mysql"
      ? MetadataRepositoryMysql.layer.pipe(
        Layer.provide(Mysql.layer(yield* Mysql.config, MetadataRepositoryMysql.migrations))
      )
      : MetadataRepositoryMemory.layer
    const discovery = config.discovery === "consul"
      ? DiscoveryConsul.layer(yield* DiscoveryConsul.config).pipe(Layer.provide(NodeHttpClient.layerUndici))
      : config.discovery === "dns"
      // Calls no other service: nothing to resolve, and the platform lists this one.
      ? DiscoveryDns.layer(yield* DiscoveryDns.config([]))
      : DiscoveryMemory.layer()
    return MetadataServer.layer(config.server).pipe(
      Layer.provide([repository, discovery]),
      Layer.provide(Readiness.layer),
      Layer.provide([Logging.layer(config.log), Telemetry.layer(MetadataServer.SERVICE_NAME, config.tracing)])
    )
  })
)

Launch.launch(Main)
