/** Where a rating service under test listens: loopback, ports of the system's choice, health checked every 100 ms. */
import type { ServerConfig } from "@movieapp/platform/Config"
import { Duration } from "effect"

export const testServerConfig: ServerConfig = {
  host: "127.0.0.1",
  grpcPort: 0,
  httpPort: 0,
  advertiseHost: "127.0.0.1",
  shutdownTimeout: Duration.seconds(5),
  healthCheckInterval: Duration.millis(100),
  healthCheckTimeout: Duration.seconds(1)
}
