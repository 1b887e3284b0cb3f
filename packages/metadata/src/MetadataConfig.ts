/** Settings of the metadata service (see platform Config for sources and spelling). */
import * as PlatformConfig from "@movieapp/platform/Config"
import * as Telemetry from "@movieapp/platform/Telemetry"
import { Config } from "effect"

export const MetadataConfig = Config.all({
  server: PlatformConfig.server({ grpcPort: 8081, httpPort: 8091, rpcPort: 8071 }),
  log: PlatformConfig.log,
  tracing: Telemetry.config,
  /** `REPOSITORY`: where metadata is stored. */
  repository: Config.literal("memory", "mysql")("repository").pipe(Config.withDefault("memory" as const)),
  /**
   * `DISCOVERY`: how instances find each other: `consul` (settings under `CONSUL_*`), or
   * `dns`, where the platform lists instances under a name (this service then registers nowhere).
   */
  discovery: Config.literal("memory", "consul", "dns")("discovery").pipe(Config.withDefault("memory" as const))
})
export type MetadataConfig = Config.Config.Success<typeof MetadataConfig>
