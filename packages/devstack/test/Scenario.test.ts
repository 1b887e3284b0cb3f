/**
 * The original in-process integration scenario, over real sockets, once through
 * movieapp.v1 and once through the original unpackaged services: put metadata
 * "the-movie"; read it back; details show no rating; user0 rates 5 -> 5; user0
 * rates 1 -> 1 (the latest rating replaces the earlier); details show 1.
 */
import { assert, describe, layer } from "@effect/vitest"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import * as legacy from "@movieapp/proto/gen/legacy/movie"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Effect } from "effect"
import * as System from "../src/System.js"

const SystemTest = System.layerTest()

const addresses = Effect.all({
  metadata: Effect.map(MetadataServer.Ports, (p) => `127.0.0.1:${p.grpc}`),
  rating: Effect.map(RatingServer.Ports, (p) => `127.0.0.1:${p.grpc}`),
  movie: Effect.map(MovieServer.Ports, (p) => `127.0.0.1:${p.grpc}`)
})

const theMovie = { id: "the-movie", title: "The Movie", description: "A film about a film.", director: "Someone" }
const rateBy = (value: number) => ({ recordId: "the-movie", recordType: "movie", userId: "user0", ratingValue: value })
const key = { recordId: "the-movie", recordType: "movie" }

describe("scenario", () => {
  layer(SystemTest, { excludeTestServices: true, timeout: "60 seconds" })("movieapp.v1", (it) => {
    it.scoped("metadata, no rating, rating replaced by the latest", () =>
      Effect.gen(function*() {
        const at = yield* addresses
        const metadata = yield* Grpc.client(v1Metadata.MetadataServiceClient, at.metadata)
        const rating = yield* Grpc.client(v1Rating.RatingServiceClient, at.rating)
        const movie = yield* Grpc.client(v1Movie.MovieServiceClient, at.movie)

        yield* Grpc.call(Grpc.method(metadata, "putMetadata"), { metadata: theMovie }, {
          metadata: yield* Tokens.editor
        })
        const stored = yield* Grpc.call(Grpc.method(metadata, "getMetadata"), { movieId: "the-movie" })
        assert.deepStrictEqual(stored.metadata, theMovie)

        const unrated = yield* Grpc.call(Grpc.method(movie, "getMovieDetails"), { movieId: "the-movie" })
        assert.deepStrictEqual(unrated.movieDetails, {
          metadata: theMovie,
          rating: undefined,
          ratingsCount: 0,
          dampedRating: undefined // set in listings by rating only
        })
        const noRatings = yield* Grpc.call(Grpc.method(rating, "getAggregatedRating"), key)
        assert.deepStrictEqual(noRatings, { ratingValue: undefined, ratingsCount: 0 })

        yield* Grpc.call(Grpc.method(rating, "putRating"), rateBy(5), { metadata: yield* Tokens.user("user0") })
        assert.deepStrictEqual(yield* Grpc.call(Grpc.method(rating, "getAggregatedRating"), key), {
          ratingValue: 5,
          ratingsCount: 1
        })

        yield* Grpc.call(Grpc.method(rating, "putRating"), rateBy(1), { metadata: yield* Tokens.user("user0") })
        assert.deepStrictEqual(yield* Grpc.call(Grpc.method(rating, "getAggregatedRating"), key), {
          ratingValue: 1,
          ratingsCount: 1
        })

        const rated = yield* Grpc.call(Grpc.method(movie, "getMovieDetails"), { movieId: "the-movie" })
        assert.deepStrictEqual(rated.movieDetails, {
          metadata: theMovie,
          rating: 1,
          ratingsCount: 1,
          dampedRating: undefined
        })
      }))
  })

  layer(SystemTest, { excludeTestServices: true, timeout: "60 seconds" })("original unpackaged services", (it) => {
    it.scoped("metadata, no rating, rating replaced by the latest", () =>
      Effect.gen(function*() {
        const at = yield* addresses
        const metadata = yield* Grpc.client(legacy.MetadataServiceClient, at.metadata)
        const rating = yield* Grpc.client(legacy.RatingServiceClient, at.rating)
        const movie = yield* Grpc.client(legacy.MovieServiceClient, at.movie)

        yield* Grpc.call(Grpc.method(metadata, "putMetadata"), { metadata: theMovie }, {
          metadata: yield* Tokens.editor
        })
        const stored = yield* Grpc.call(Grpc.method(metadata, "getMetadata"), { movieId: "the-movie" })
        assert.deepStrictEqual(stored.metadata, theMovie)

        // The original API has no "absent": 0 in details, NOT_FOUND from the rating service.
        const unrated = yield* Grpc.call(Grpc.method(movie, "getMovieDetails"), { movieId: "the-movie" })
        assert.deepStrictEqual(unrated.movieDetails, { metadata: theMovie, rating: 0 })
        const noRatings = yield* Effect.flip(Grpc.call(Grpc.method(rating, "getAggregatedRating"), key))
        assert.strictEqual(noRatings.code, 5 /* NOT_FOUND */)

        yield* Grpc.call(Grpc.method(rating, "putRating"), rateBy(5), { metadata: yield* Tokens.user("user0") })
        assert.deepStrictEqual(yield* Grpc.call(Grpc.method(rating, "getAggregatedRating"), key), { ratingValue: 5 })

        yield* Grpc.call(Grpc.method(rating, "putRating"), rateBy(1), { metadata: yield* Tokens.user("user0") })
        assert.deepStrictEqual(yield* Grpc.call(Grpc.method(rating, "getAggregatedRating"), key), { ratingValue: 1 })

        const rated = yield* Grpc.call(Grpc.method(movie, "getMovieDetails"), { movieId: "the-movie" })
        assert.deepStrictEqual(rated.movieDetails, { metadata: theMovie, rating: 1 })
      }))
  })
})
