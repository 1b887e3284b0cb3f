/** Settings of the rating service (see platform Config for sources and spelling). */
import * as Auth from "@movieapp/platform/Auth"
import * as PlatformConfig from "@movieapp/platform/Config"
import * as RateLimit from "@movieapp/platform/RateLimit"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Config } from "effect"
import * as Ranking from "./domain/Ranking.js"

export const RatingConfig = Config.all({
  server: PlatformConfig.server({ grpcPort: 8082, httpPort: 8092, rpcPort: 8072 }),
  log: PlatformConfig.log,
  tracing: Telemetry.config,
  /** `RANKING_PRIOR_WEIGHT`, `RANKING_PRIOR_MEAN`: the damped mean's prior (domain/Ranking). */
  ranking: Ranking.config,
  /** `AUTH`, `AUTH_PUBLIC_KEY_FILE` or `AUTH_JWKS_URL`, `AUTH_ISSUER`, `AUTH_AUDIENCE`: how writes are verified. */
  auth: Auth.config,
  /** `RATE_LIMIT_RATE`, `RATE_LIMIT_BURST`: writes per second per caller (the token's subject); 0 for none. */
  rateLimit: RateLimit.config(RateLimit.defaults.writes),
  /** `REPOSITORY`: where ratings are stored. */
  repository: Config.literal("memory", "mysql")("repository").pipe(Config.withDefault("memory" as const)),
  /**
   * `DISCOVERY`: how instances find each other: `consul` (settings under `CONSUL_*`), or
   * `dns`, where the platform lists instances under a name (this service then registers nowhere).
   */
  discovery: Config.literal("memory", "consul", "dns")("discovery").pipe(Config.withDefault("memory" as const)),
  /** `INGESTION`: where rating events come from: submitted to this process, or a Kafka topic (`KAFKA_*`). */
  ingestion: Config.literal("inprocess", "kafka")("ingestion").pipe(Config.withDefault("inprocess" as const))
})
export type RatingConfig = Config.Config.Success<typeof RatingConfig>
