/** Settings of the metadata service (see platform Config for sources and spelling). */
import * as Auth from "@movieapp/platform/Auth"
import * as PlatformConfig from "@movieapp/platform/Config"
import * as RateLimit from "@movieapp/platform/RateLimit"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Config } from "effect"

export const MetadataConfig = Config.all({
  server: PlatformConfig.server({ grpcPort: 8081, httpPort: 8091, rpcPort: 8071 }),
  log: PlatformConfig.log,
  tracing: Telemetry.config,
  /** `AUTH`, `AUTH_PUBLIC_KEY_FILE` or `AUTH_JWKS_URL`, `AUTH_ISSUER`, `AUTH_AUDIENCE`: how writes are verified. */
  auth: Auth.config,
  /** `RATE_LIMIT_RATE`, `RATE_LIMIT_BURST`: writes per second per caller (the token's subject); 0 for none. */
  rateLimit: RateLimit.config(RateLimit.defaults.writes),
  /** `REPOSITORY`: where metadata is stored. */
  repository: Config.literal("memory", "mysql")("repository").pipe(Config.withDefault("memory" as const)),
  /**
   * `DISCOVERY`: how instances find each other: `consul` (settings under `CONSUL_*`), or
   * `dns`, where the platform lists instances under a name (this service then registers nowhere).
   */
  discovery: Config.literal("memory", "consul", "dns")("discovery").pipe(Config.withDefault("memory" as const))
})
export type MetadataConfig = Config.Config.Success<typeof MetadataConfig>
