/**
 * `npm start`: the whole system on embedded defaults (memory storage, memory
 * discovery, in-process rating events, no external servers) with the sample
 * catalog and rating events loaded through the services' own APIs, then how to
 * call it, with tokens signed by a key made for this run. Ctrl-C stops every
 * service gracefully.
 */
import { FileSystem } from "@effect/platform"
import { METADATA_WRITE_SCOPE, RATINGS_INGEST_SCOPE } from "@movieapp/contracts/Auth"
import { Metadata, MetadataRpcs } from "@movieapp/contracts/Metadata"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import * as PlatformConfig from "@movieapp/platform/Config"
import * as DevelopmentTokens from "@movieapp/platform/DevelopmentTokens"
import * as Launch from "@movieapp/platform/Launch"
import * as Logging from "@movieapp/platform/Logging"
import * as RateLimit from "@movieapp/platform/RateLimit"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import * as Telemetry from "@movieapp/platform/Telemetry"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as RatingEventPublisherRpc from "@movieapp/ratingingestor/adapters/RatingEventPublisherRpc"
import * as Ingest from "@movieapp/ratingingestor/Ingest"
import { Config, Console, Duration, Effect, Redacted, Schema } from "effect"
import { fileURLToPath } from "node:url"
import * as System from "./System.js"

const sample = (name: string) => fileURLToPath(new URL(`../sample/${name}`, import.meta.url))

/** The variables that move a service's listeners (its `ports`), named when one cannot bind. */
const settings = (service: keyof typeof System.defaultPorts): PlatformConfig.ServerSettings => ({
  host: PlatformConfig.serverSettings.host,
  grpcPort: PlatformConfig.environmentName([service, "grpcPort"]),
  httpPort: PlatformConfig.environmentName([service, "httpPort"]),
  rpcPort: PlatformConfig.environmentName([service, "rpcPort"])
})

/** `METADATA_GRPC_PORT`, `METADATA_HTTP_PORT`, `METADATA_RPC_PORT`, `RATING_...`, `MOVIE_...`: where each service listens. */
const ports = (service: keyof typeof System.defaultPorts): Config.Config<System.Ports> => {
  const defaults: System.Ports = System.defaultPorts[service]
  return Config.all({
    grpc: Config.integer("grpcPort").pipe(Config.withDefault(defaults.grpc)),
    http: Config.integer("httpPort").pipe(Config.withDefault(defaults.http)),
    rpc: defaults.rpc === undefined
      ? Config.succeed(undefined)
      : Config.integer("rpcPort").pipe(Config.withDefault(defaults.rpc))
  }).pipe(
    Config.map(({ rpc, ...ports }) => rpc === undefined ? ports : { ...ports, rpc }),
    Config.nested(service)
  )
}

const DevstackConfig = Config.all({
  host: Config.string("host").pipe(Config.withDefault("127.0.0.1"), Config.nested("server")),
  metadata: ports("metadata"),
  rating: ports("rating"),
  movie: ports("movie"),
  log: PlatformConfig.log,
  tracing: Telemetry.config,
  /** `SAMPLE_DATA=false` starts empty. */
  sampleData: Config.boolean("sampleData").pipe(Config.withDefault(true))
})

/** The sample catalog goes in through the metadata service's Effect RPC API, like any client's would, as an editor. */
const loadCatalog = (metadata: RpcTransport.Address, token: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const movies = yield* fs.readFileString(sample("movies.json")).pipe(
      Effect.flatMap(Schema.decodeUnknown(Schema.parseJson(Schema.Array(Metadata))))
    )
    const client = yield* RpcTransport.makeClient(MetadataRpcs, metadata)
    const headers = { authorization: `Bearer ${token}` }
    yield* Effect.forEach(movies, (metadata) => client.PutMetadata({ metadata }, { headers }), {
      concurrency: 8,
      discard: true
    })
    return movies.length
  }).pipe(Effect.scoped)

/** Who the banner's tokens speak for. */
interface Tokens {
  readonly alice: string
  readonly bob: string
  readonly editor: string
  readonly ingest: string
}

/** Tokens for two users, an editor and the ingestor, valid as long as a stack is likely to run. */
const signTokens = Effect.gen(function*() {
  const { sign } = yield* DevelopmentTokens.DevelopmentTokens
  const expiresIn = TOKEN_LIFETIME
  return {
    alice: yield* sign({ sub: "alice", expiresIn }),
    bob: yield* sign({ sub: "bob", expiresIn }),
    editor: yield* sign({ sub: "editor", scope: METADATA_WRITE_SCOPE, expiresIn }),
    ingest: yield* sign({ sub: "ratingingestor", scope: RATINGS_INGEST_SCOPE, expiresIn })
  } satisfies Tokens
})

const TOKEN_LIFETIME = Duration.hours(24)

const banner = (
  host: string,
  counts: { readonly movies: number; readonly events: number } | undefined,
  tokens: Tokens
) =>
  Effect.gen(function*() {
    const metadata = yield* MetadataServer.Ports
    const rating = yield* RatingServer.Ports
    const movie = yield* MovieServer.Ports
    const at = (port: number) => `${host}:${port}`
    const grpcurl = "grpcurl -plaintext"
    const bufCurl = "npx buf curl --protocol grpc --http2-prior-knowledge"
    yield* Console.log([
      "",
      "movieapp is running on embedded defaults (memory storage, memory discovery, in-process rating events).",
      `  movie (public gateway)  gRPC ${at(movie.grpc)}  HTTP http://${at(movie.http)}`,
      `  metadata                gRPC ${at(metadata.grpc)}  HTTP http://${at(metadata.http)}`,
      `  rating                  gRPC ${at(rating.grpc)}  HTTP http://${at(rating.http)}`,
      counts === undefined
        ? "  No sample data loaded."
        : `  Loaded ${counts.movies} movies and ${counts.events} rating events.`,
      "",
      `Tokens for writes (ES256, signed with a key made for this run, valid ${
        Duration.format(TOKEN_LIFETIME)
      }); paste them into your shell:`,
      `  export ALICE_TOKEN=${tokens.alice}`,
      `  export BOB_TOKEN=${tokens.bob}`,
      `  export EDITOR_TOKEN=${tokens.editor}    # scope metadata:write`,
      `  export RATING_TOKEN=${tokens.ingest}    # scope ratings:ingest, for npm run ingest`,
      "",
      "Call it:",
      `  curl 'http://${at(movie.http)}/movies?orderBy=rating&limit=5'      # the catalogue, best rated first`,
      `  curl 'http://${
        at(movie.http)
      }/movies'                              # by title; pass nextPageToken as pageToken`,
      `  ${grpcurl} -d '{"order_by":"rating","page_size":5}' ${at(movie.grpc)} movieapp.v1.MovieService/ListMovies`,
      `  curl 'http://${at(movie.http)}/movie?id=1'`,
      `  ${bufCurl} -d '{"movie_id":"1"}' http://${at(movie.grpc)}/movieapp.v1.MovieService/GetMovieDetails`,
      `  ${bufCurl} --list-services http://${at(movie.grpc)}`,
      `  ${grpcurl} -d '{"movie_id":"1"}' ${at(movie.grpc)} movieapp.v1.MovieService/GetMovieDetails`,
      `  ${grpcurl} -d '{"record_id":"1","record_type":"movie"}' ${at(rating.grpc)} RatingService/GetAggregatedRating`,
      `  ${grpcurl} ${at(movie.grpc)} list`,
      `  curl -X PUT http://${at(rating.http)}/rating -H 'content-type: application/json' \\`,
      `       -H "authorization: Bearer $ALICE_TOKEN" -d '{"recordId":"1","recordType":"movie","userId":"alice","value":9}'`,
      `  ${grpcurl} -H "authorization: Bearer $BOB_TOKEN" \\`,
      `       -d '{"record_id":"1","record_type":"movie","user_id":"bob","rating_value":7}' ${
        at(rating.grpc)
      } movieapp.v1.RatingService/PutRating`,
      `  npm run ingest -- --rating-address ${at(rating.rpc!)} packages/devstack/sample/ratings.json`,
      "",
      "Ctrl-C stops everything."
    ].join("\n"))
  })

const program = Effect.gen(function*() {
  const config = yield* DevstackConfig
  const running = Effect.gen(function*() {
    let counts: { movies: number; events: number } | undefined
    const tokens = yield* signTokens
    if (config.sampleData) {
      const movies = yield* loadCatalog({ host: config.host, port: (yield* MetadataServer.Ports).rpc! }, tokens.editor)
      const summary = yield* Ingest.run({ file: sample("ratings.json") }).pipe(
        Effect.provide(
          RatingEventPublisherRpc.layer({
            address: { host: config.host, port: (yield* RatingServer.Ports).rpc! },
            token: Redacted.make(tokens.ingest)
          })
        )
      )
      counts = { movies, events: summary.published }
    }
    yield* banner(config.host, counts, tokens)
    return yield* Effect.never
  })
  return yield* running.pipe(
    Effect.provide(System.layer({
      host: config.host,
      metadata: config.metadata,
      rating: config.rating,
      movie: config.movie,
      tracing: (service) => Telemetry.layer(service, config.tracing),
      settings: { metadata: settings("metadata"), rating: settings("rating"), movie: settings("movie") },
      rateLimits: RateLimit.defaults
    })),
    Effect.provide(DevelopmentTokens.layer),
    Effect.provide(Logging.layer(config.log))
  )
})

Launch.run(program)
