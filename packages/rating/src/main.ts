/**
 * Composition root of the rating service: config, adapters, launch. Adapters the
 * configuration does not choose are never loaded, nor their libraries (mysql2,
 * kafkajs, undici): those are imported here when chosen.
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
import * as RatingEventSourceInProcess from "./adapters/RatingEventSourceInProcess.js"
import * as RatingRepositoryMemory from "./adapters/RatingRepositoryMemory.js"
import { RankingPrior } from "./domain/Ranking.js"
import { RatingEventInbox } from "./ports/RatingEventInbox.js"
import { RatingConfig } from "./RatingConfig.js"
import * as RatingServer from "./RatingServer.js"

const Main = Layer.unwrapEffect(
  Effect.gen(function*() {
    const config = yield* RatingConfig
    const repository = config.repository === "mysql"
      ? yield* Effect.gen(function*() {
        const [Mysql, RatingRepositoryMysql] = yield* Effect.promise(() =>
          Promise.all([import("@movieapp/platform/Mysql"), import("./adapters/RatingRepositoryMysql.js")])
        )
        return RatingRepositoryMysql.layer.pipe(
          Layer.provide(Mysql.layer(yield* Mysql.config, RatingRepositoryMysql.migrations))
        )
      })
      : RatingRepositoryMemory.layer
    const events = config.ingestion === "kafka"
      ? yield* Effect.gen(function*() {
        const RatingEventSourceKafka = yield* Effect.promise(() => import("./adapters/RatingEventSourceKafka.js"))
        const kafka = yield* RatingEventSourceKafka.config
        return Layer.mergeAll(
          RatingEventSourceKafka.layer(kafka),
          RatingEventSourceKafka.layerBrokerCheck(kafka.kafka),
          RatingEventInbox.layerClosed("this instance takes rating events from Kafka; publish them to the topic")
        )
      })
      : RatingEventSourceInProcess.layer
    const discovery = config.discovery === "consul"
      ? Discovery.layerConsul
      : config.discovery === "dns"
      // Calls no other service: nothing to resolve, and the platform lists this one.
      ? DiscoveryDns.layer(yield* DiscoveryDns.config([]))
      : DiscoveryMemory.layer()
    const writes = TokenVerifierJose.layerWriteAccess(config.auth, config.rateLimit)
    return RatingServer.layer(config.server).pipe(
      Layer.provide([repository.pipe(Layer.provide(RankingPrior.layer(config.ranking))), events, discovery, writes]),
      Layer.provide(Readiness.layer),
      Layer.provide([Logging.layer(config.log), Telemetry.layer(RatingServer.SERVICE_NAME, config.tracing)])
    )
  })
)

Launch.launch(Main)
