/** Settings of the movie gateway (see platform Config for sources and spelling). */
import * as PlatformConfig from "@movieapp/platform/Config"
import * as RateLimit from "@movieapp/platform/RateLimit"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Config } from "effect"

export const BackendsConfig = Config.all({
  /** Upper bound of one backend call, retries included, when the caller set no earlier deadline. */
  timeout: Config.duration("timeout").pipe(Config.withDefault("5 seconds")),
  /** Retries of a backend call while the backend is unavailable. */
  retries: Config.integer("retries").pipe(Config.withDefault(3)),
  /** First retry delay; later ones grow exponentially, with jitter. */
  backoff: Config.duration("backoff").pipe(Config.withDefault("25 millis"))
}).pipe(Config.nested("backends"))
export type BackendsConfig = Config.Config.Success<typeof BackendsConfig>

export const MovieConfig = Config.all({
  server: PlatformConfig.server({ grpcPort: 8083, httpPort: 8093 }),
  log: PlatformConfig.log,
  tracing: Telemetry.config,
  backends: BackendsConfig,
  /**
   * `RATE_LIMIT_RATE`, `RATE_LIMIT_BURST`: calls per second per caller (peer
   * address), gRPC and HTTP together; 0 turns the limit off.
   */
  rateLimit: RateLimit.config(RateLimit.defaults.gateway),
  /**
   * `DISCOVERY`: how the gateway finds metadata and rating instances: `consul` (settings under
   * `CONSUL_*`), or `dns`: every address of `METADATA_ADDRESS` and `RATING_ADDRESS` (`host:port`).
   */
  discovery: Config.literal("memory", "consul", "dns")("discovery").pipe(Config.withDefault("memory" as const))
})
export type MovieConfig = Config.Config.Success<typeof MovieConfig>
