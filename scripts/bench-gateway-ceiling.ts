/**
 * The ceiling `npm run bench:gateway` compares the system with: the same
 * GetMovieDetails fan-out in plain grpc-js and nothing else (no Effect, no
 * validation, no metrics, no logs). A gateway asks its metadata and rating
 * backends concurrently (`Promise.all`), over one channel each, and the backends
 * answer from a Map holding the catalog the benchmark seeds into the system
 * (`catalog`). Messages are the original API's (proto/legacy/movie.proto, the
 * project's generated codecs), as the system's gRPC edge serves them.
 *
 * Each role is its own process and prints `ready` once it listens:
 *
 *   node --import tsx scripts/bench-gateway-ceiling.ts metadata <port> <movies>
 *   node --import tsx scripts/bench-gateway-ceiling.ts rating <port> <movies>
 *   node --import tsx scripts/bench-gateway-ceiling.ts gateway <port> <metadata port> <rating port>
 */
import * as grpc from "@grpc/grpc-js"
import {
  type GetAggregatedRatingResponse,
  type GetMetaDataResponse,
  type Metadata,
  MetadataServiceClient,
  type MetadataServiceServer,
  MetadataServiceService,
  type MovieServiceServer,
  MovieServiceService,
  RatingServiceClient,
  type RatingServiceServer,
  RatingServiceService
} from "@movieapp/proto/gen/legacy/movie"
import { fileURLToPath } from "node:url"

/** The benchmark's catalog: `movies` movies, each rated by three users. */
export const catalog = (movies: number) =>
  Array.from({ length: movies }, (_, index) => {
    const id = `movie-${index + 1}`
    const ratings = [1, 2, 3].map((user) => ({ userId: `user-${user}`, value: 1 + ((index * 7 + user * 3) % 10) }))
    return {
      metadata: {
        id,
        title: `Movie ${index + 1}`,
        description: "A film of the benchmark's catalog.",
        director: `Director ${index % 37}`
      },
      ratings,
      average: ratings.reduce((sum, r) => sum + r.value, 0) / ratings.length
    }
  })

const notFound = (what: string): Partial<grpc.StatusObject> => ({
  code: grpc.status.NOT_FOUND,
  details: `${what} not found`
})

const serve = (port: number, add: (server: grpc.Server) => void) => {
  const server = new grpc.Server()
  add(server)
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error) => {
    if (error) throw error
    console.log("ready")
  })
}

const metadata = (port: number, movies: number) => {
  const byId = new Map(catalog(movies).map((movie) => [movie.metadata.id, movie.metadata]))
  serve(port, (server) =>
    server.addService(
      MetadataServiceService,
      {
        getMetadata: (call, callback) => {
          const found = byId.get(call.request.movieId)
          if (found) callback(null, { metadata: found })
          else callback(notFound("metadata"))
        },
        putMetadata: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED })
      } satisfies MetadataServiceServer
    ))
}

const rating = (port: number, movies: number) => {
  const averages = new Map(catalog(movies).map((movie) => [`movie/${movie.metadata.id}`, movie.average]))
  serve(port, (server) =>
    server.addService(
      RatingServiceService,
      {
        getAggregatedRating: (call, callback) => {
          const found = averages.get(`${call.request.recordType}/${call.request.recordId}`)
          if (found === undefined) callback(notFound("rating"))
          else callback(null, { ratingValue: found })
        },
        putRating: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED })
      } satisfies RatingServiceServer
    ))
}

const gateway = (port: number, metadataPort: number, ratingPort: number) => {
  const credentials = grpc.credentials.createInsecure()
  const metadataClient = new MetadataServiceClient(`127.0.0.1:${metadataPort}`, credentials)
  const ratingClient = new RatingServiceClient(`127.0.0.1:${ratingPort}`, credentials)
  const getMetadata = (movieId: string) =>
    new Promise<Metadata | undefined>((resolve, reject) =>
      metadataClient.getMetadata(
        { movieId },
        (error: grpc.ServiceError | null, response: GetMetaDataResponse) =>
          error ? reject(error) : resolve(response.metadata)
      )
    )
  // As the original: a movie nobody rated has rating 0.
  const getRating = (recordId: string) =>
    new Promise<number>((resolve, reject) =>
      ratingClient.getAggregatedRating(
        { recordId, recordType: "movie" },
        (error: grpc.ServiceError | null, response: GetAggregatedRatingResponse) =>
          error?.code === grpc.status.NOT_FOUND ? resolve(0) : error ? reject(error) : resolve(response.ratingValue)
      )
    )
  serve(port, (server) =>
    server.addService(
      MovieServiceService,
      {
        getMovieDetails: (call, callback) => {
          Promise.all([getMetadata(call.request.movieId), getRating(call.request.movieId)]).then(
            ([found, value]) => callback(null, { movieDetails: { rating: value, metadata: found } }),
            (error: grpc.ServiceError) =>
              callback({ code: error.code ?? grpc.status.INTERNAL, details: error.details ?? String(error) })
          )
        }
      } satisfies MovieServiceServer
    ))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [role, port, ...rest] = process.argv.slice(2)
  if (role === "metadata") metadata(Number(port), Number(rest[0]))
  else if (role === "rating") rating(Number(port), Number(rest[0]))
  else if (role === "gateway") gateway(Number(port), Number(rest[0]), Number(rest[1]))
  else {
    console.error(
      "usage: bench-gateway-ceiling.ts metadata|rating <port> <movies> | gateway <port> <metadata port> <rating port>"
    )
    process.exit(2)
  }
}
