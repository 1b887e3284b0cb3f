/**
 * The whole system in one process on embedded defaults: memory storage, one
 * shared memory discovery registry, in-process rating events. `npm start` runs it
 * on fixed ports; tests run it on port 0, over the same real sockets.
 */
import { NodeFileSystem } from "@effect/platform-node"
import * as MetadataRepositoryMemory from "@movieapp/metadata/adapters/MetadataRepositoryMemory"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import type { BackendsConfig } from "@movieapp/movie/MovieConfig"
import * as MovieServer from "@movieapp/movie/MovieServer"
import type { ServerConfig, ServerSettings, TlsSettings } from "@movieapp/platform/Config"
import * as DevelopmentTokens from "@movieapp/platform/DevelopmentTokens"
import * as DiscoveryMemory from "@movieapp/platform/DiscoveryMemory"
import type { KafkaAccessError } from "@movieapp/platform/Kafka"
import * as RateLimit from "@movieapp/platform/RateLimit"
import * as Readiness from "@movieapp/platform/Readiness"
import type { TlsError } from "@movieapp/platform/Tls"
import * as RatingEventSourceInProcess from "@movieapp/rating/adapters/RatingEventSourceInProcess"
import * as RatingRepositoryMemory from "@movieapp/rating/adapters/RatingRepositoryMemory"
import type { RatingEventInbox } from "@movieapp/rating/ports/RatingEventInbox"
import type { RatingEventSource } from "@movieapp/rating/ports/RatingEventSource"
import type { RatingRepository } from "@movieapp/rating/ports/RatingRepository"
import * as RatingServer from "@movieapp/rating/RatingServer"
import { Duration, Layer, Logger, LogLevel } from "effect"

export interface Ports {
  readonly grpc: number
  readonly http: number
  /** Effect RPC, for the services that serve it (metadata, rating). */
  readonly rpc?: number
}

export interface Options {
  readonly host: string
  readonly metadata: Ports
  readonly rating: Ports
  readonly movie: Ports
  readonly backends?: Partial<BackendsConfig>
  /** The rating service's storage and event transport; memory and in-process by default. */
  readonly ratingAdapters?: Layer.Layer<
    RatingRepository | RatingEventSource | RatingEventInbox,
    KafkaAccessError | TlsError
  >
  /** Tracing of each service (each gets its own, named after it); none by default. */
  readonly tracing?: (service: string) => Layer.Layer<never>
  /** The settings that place each service's listeners, named when one cannot bind; the services' own by default. */
  readonly settings?: Readonly<Record<"metadata" | "rating" | "movie", ServerSettings>>
  /** Each service's TLS identity; plaintext without. */
  readonly tls?: Readonly<Partial<Record<"metadata" | "rating" | "movie", TlsSettings>>>
  /** Per-caller rate limits: every call at the gateway, writes at the backends. None by default. */
  readonly rateLimits?: { readonly gateway?: RateLimit.RateLimitConfig; readonly writes?: RateLimit.RateLimitConfig }
}

/** The default ports of the three services. */
export const defaultPorts = {
  metadata: { grpc: 8081, http: 8091, rpc: 8071 },
  rating: { grpc: 8082, http: 8092, rpc: 8072 },
  movie: { grpc: 8083, http: 8093 }
} as const

/** Every service on an ephemeral port: for tests. */
export const ephemeralPorts = {
  metadata: { grpc: 0, http: 0, rpc: 0 },
  rating: { grpc: 0, http: 0, rpc: 0 },
  movie: { grpc: 0, http: 0 }
} as const

const server = (
  host: string,
  ports: Ports,
  settings: ServerSettings | undefined,
  tls: TlsSettings | undefined
): ServerConfig => ({
  host,
  ...(tls === undefined ? {} : { tls }),
  grpcPort: ports.grpc,
  httpPort: ports.http,
  ...(ports.rpc === undefined ? {} : { rpcPort: ports.rpc }),
  advertiseHost: host,
  shutdownTimeout: Duration.seconds(10),
  ...(settings === undefined ? {} : { settings })
})

/** The three services; writes need tokens signed with the {@link DevelopmentTokens} key. */
export const layer = (options: Options) => {
  const tracing = options.tracing ?? (() => Layer.empty)
  const writes = options.rateLimits?.writes ?? RateLimit.off
  return Layer.mergeAll(
    MetadataServer.layer(server(options.host, options.metadata, options.settings?.metadata, options.tls?.metadata))
      .pipe(
        Layer.provide([MetadataRepositoryMemory.layer, DevelopmentTokens.layerWriteAccess(writes)]),
        Layer.provide([Readiness.layer, tracing(MetadataServer.SERVICE_NAME)])
      ),
    RatingServer.layer(server(options.host, options.rating, options.settings?.rating, options.tls?.rating)).pipe(
      Layer.provide([
        options.ratingAdapters ?? Layer.merge(RatingRepositoryMemory.layer, RatingEventSourceInProcess.layer),
        DevelopmentTokens.layerWriteAccess(writes)
      ]),
      Layer.provide([Readiness.layer, tracing(RatingServer.SERVICE_NAME)])
    ),
    MovieServer.layer({
      server: server(options.host, options.movie, options.settings?.movie, options.tls?.movie),
      backends: {
        timeout: Duration.seconds(5),
        retries: 3,
        backoff: Duration.millis(25),
        ...options.backends
      },
      rateLimit: options.rateLimits?.gateway ?? RateLimit.off
    }).pipe(Layer.provide([Readiness.layer, tracing(MovieServer.SERVICE_NAME)]))
  ).pipe(Layer.provide(DiscoveryMemory.layer()))
}

/**
 * The system on ephemeral loopback ports, logging warnings and errors only: for
 * tests, which sign their tokens with the {@link DevelopmentTokens} it exposes.
 */
export const layerTest = (
  options: Pick<Options, "backends" | "ratingAdapters" | "tracing" | "tls" | "rateLimits"> = {}
) =>
  layer({ host: "127.0.0.1", ...ephemeralPorts, ...options }).pipe(
    Layer.provideMerge(DevelopmentTokens.layer),
    Layer.provide([Logger.minimumLogLevel(LogLevel.Warning), NodeFileSystem.layer])
  )
