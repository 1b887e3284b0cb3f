/**
 * The client side of the standard gRPC health service (`grpc.health.v1.Health`):
 * what container health checks and tests ask a running server.
 */
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { Effect } from "effect"
import { createRequire } from "node:module"
import * as path from "node:path"

type Check = (
  request: { readonly service: string },
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (error: grpc.ServiceError | null, response: { readonly status: string }) => void
) => grpc.ClientUnaryCall

type HealthClient = grpc.Client & { readonly Check: Check }

const require = createRequire(import.meta.url)
// The proto that grpc-health-check serves, so client and server agree on it by construction.
const healthPackage = grpc.loadPackageDefinition(
  protoLoader.loadSync(
    path.join(path.dirname(require.resolve("grpc-health-check/package.json")), "proto/health/v1/health.proto"),
    { enums: String }
  )
) as unknown as {
  grpc: {
    health: {
      v1: {
        Health: new(
          address: string,
          credentials: grpc.ChannelCredentials,
          options?: grpc.ChannelOptions
        ) => HealthClient
      }
    }
  }
}

/**
 * `Health/Check` of `service` ("" for the server as a whole) at `address`
 * (`host:port`): the serving status by name (`SERVING`, `NOT_SERVING`,
 * `SERVICE_UNKNOWN`), or the call's error (e.g. `UNAVAILABLE` when nothing
 * listens, `DEADLINE_EXCEEDED` after `deadlineMs`).
 */
export const check = (
  address: string,
  service: string,
  options: {
    readonly deadlineMs?: number
    /** TLS credentials for a server that serves TLS; plaintext when absent. */
    readonly credentials?: grpc.ChannelCredentials | undefined
    /** The name asked for in the TLS handshake, when not the address's host (an IP address is no name). */
    readonly serverName?: string | undefined
  } = {}
): Effect.Effect<string, grpc.ServiceError> =>
  Effect.acquireUseRelease(
    Effect.sync(() =>
      new healthPackage.grpc.health.v1.Health(
        address,
        options.credentials ?? grpc.credentials.createInsecure(),
        options.serverName === undefined ? {} : { "grpc.ssl_target_name_override": options.serverName }
      )
    ),
    (client) =>
      Effect.async<string, grpc.ServiceError>((resume) => {
        const deadline = options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs }
        const call = client.Check(
          { service },
          new grpc.Metadata(),
          deadline,
          (error, response) => resume(error ? Effect.fail(error) : Effect.succeed(response.status))
        )
        return Effect.sync(() => call.cancel())
      }),
    (client) => Effect.sync(() => client.close())
  )
