/**
 * Browsing the catalogue over real sockets, through gRPC (grpc-js clients) and
 * HTTP JSON: ListMovies by title and by rating, page by page with the tokens it
 * issues, while movies are added; BatchGetMovieDetails with unknown ids; and the
 * bad input of each answered INVALID_ARGUMENT / 400 naming the field.
 */
import { assert, describe, layer } from "@effect/vitest"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import * as v1Metadata from "@movieapp/proto/gen/movieapp/v1/metadata"
import * as v1Movie from "@movieapp/proto/gen/movieapp/v1/movie"
import * as v1Rating from "@movieapp/proto/gen/movieapp/v1/rating"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Effect, Fiber, Ref } from "effect"
import * as System from "../src/System.js"

const INVALID_ARGUMENT = 3

const clients = Effect.gen(function*() {
  const at = (port: number) => `127.0.0.1:${port}`
  const metadata = yield* Grpc.client(v1Metadata.MetadataServiceClient, at((yield* MetadataServer.Ports).grpc))
  const rating = yield* Grpc.client(v1Rating.RatingServiceClient, at((yield* RatingServer.Ports).grpc))
  const movie = yield* Grpc.client(v1Movie.MovieServiceClient, at((yield* MovieServer.Ports).grpc))
  const http = (yield* MovieServer.Ports).http
  const editor = { metadata: yield* Tokens.editor }
  const user = (i: number) => Effect.map(Tokens.user(`u${i}`), (token) => ({ metadata: token }))
  return {
    put: (id: string, title: string) =>
      Grpc.call(
        Grpc.method(metadata, "putMetadata"),
        { metadata: { id, title, description: "", director: "" } },
        editor
      ),
    rate: (id: string, values: ReadonlyArray<number>) =>
      Effect.forEach(
        values,
        (ratingValue, i) =>
          Effect.flatMap(user(i), (token) =>
            Grpc.call(Grpc.method(rating, "putRating"), {
              recordId: id,
              recordType: "movie",
              userId: `u${i}`,
              ratingValue
            }, token)),
        { discard: true }
      ),
    list: (request: Partial<v1Movie.ListMoviesRequest>) =>
      Grpc.call(Grpc.method(movie, "listMovies"), {
        pageSize: 0,
        pageToken: "",
        orderBy: "",
        minRatingsCount: 0,
        ...request
      }),
    batch: (movieIds: ReadonlyArray<string>) =>
      Grpc.call(Grpc.method(movie, "batchGetMovieDetails"), { movieIds: [...movieIds] }),
    http: (method: string, path: string, body?: unknown) =>
      Effect.promise(async () => {
        const response = await fetch(`http://127.0.0.1:${http}${path}`, {
          method,
          ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } })
        })
        return { status: response.status, body: JSON.parse(await response.text()) }
      })
  }
})

type Clients = Effect.Effect.Success<typeof clients>

/** Every page of a listing by gRPC, `between` run after each page. */
const allPages = (
  c: Clients,
  request: Partial<v1Movie.ListMoviesRequest>,
  between: Effect.Effect<void, unknown> = Effect.void
) =>
  Effect.gen(function*() {
    const movies: Array<v1Movie.MovieDetails> = []
    let pageToken = ""
    for (;;) {
      const page = yield* c.list({ ...request, pageToken })
      movies.push(...page.movies)
      if (page.nextPageToken === "") return movies
      assert.isAtMost(page.movies.length, request.pageSize || 20)
      pageToken = page.nextPageToken
      yield* between
    }
  })

const expectInvalid = <A>(call: Effect.Effect<A, { code: number; details: string }>, details: string) =>
  Effect.flip(call).pipe(Effect.map((error) => {
    assert.strictEqual(error.code, INVALID_ARGUMENT, error.details)
    assert.strictEqual(error.details, details)
  }))

describe("catalogue", () => {
  layer(System.layerTest(), { excludeTestServices: true, timeout: "60 seconds" })("listing and ranking", (it) => {
    it.scoped("by title: every movie once, in code point order, with its mean and count; by rating: damped, filtered", () =>
      Effect.gen(function*() {
        const c = yield* clients
        const titles = ["Heat", "Alien", "alien", "Zodiac", "Éclair", "Brazil", "Casablanca"]
        yield* Effect.forEach(titles, (title, i) => c.put(`m${i}`, title), { discard: true })
        yield* c.rate("m0", [10]) // Heat: one 10
        yield* c.rate("m5", Array.from({ length: 40 }, () => 9)) // Brazil: forty 9s
        yield* c.rate("m6", [7, 8, 9]) // Casablanca
        yield* c.rate("not-in-the-catalogue", [10, 10, 10, 10, 10]) // rated, never described

        for (const pageSize of [0, 1, 3]) {
          const listed = yield* allPages(c, { pageSize })
          assert.deepStrictEqual(listed.map((m) => m.metadata!.title), [
            "Alien",
            "Brazil",
            "Casablanca",
            "Heat",
            "Zodiac",
            "alien",
            "Éclair"
          ])
        }
        const [, brazil, casablanca, heat, zodiac] = yield* allPages(c, { pageSize: 5 })
        assert.deepStrictEqual([brazil!.rating, brazil!.ratingsCount, brazil!.dampedRating], [9, 40, undefined])
        assert.deepStrictEqual([casablanca!.rating, casablanca!.ratingsCount], [8, 3])
        assert.deepStrictEqual([heat!.rating, heat!.ratingsCount], [10, 1])
        assert.deepStrictEqual([zodiac!.rating, zodiac!.ratingsCount], [undefined, 0])

        // The default prior (C = 10, m = 5.5): forty 9s beat one 10; an undescribed id is left out.
        const ranked = yield* allPages(c, { orderBy: "rating", pageSize: 1 })
        assert.deepStrictEqual(ranked.map((m) => [m.metadata!.title, m.dampedRating]), [
          ["Brazil", (55 + 360) / 50],
          ["Casablanca", (55 + 24) / 13],
          ["Heat", (55 + 10) / 11]
        ])
        assert.deepStrictEqual(ranked.map((m) => [m.rating, m.ratingsCount]), [[9, 40], [8, 3], [10, 1]])
        const atLeastThree = yield* allPages(c, { orderBy: "rating", minRatingsCount: 3 })
        assert.deepStrictEqual(atLeastThree.map((m) => m.metadata!.title), ["Brazil", "Casablanca"])

        // The same through HTTP JSON, with its own names. The undescribed id takes a place in the
        // ranking's page and is left out: that page is short, and the token leads on.
        const first = yield* c.http("GET", "/movies?limit=2&orderBy=rating")
        assert.strictEqual(first.status, 200)
        assert.deepStrictEqual(first.body.movies.map((m: any) => [m.metadata.title, m.rating, m.ratingsCount]), [
          ["Brazil", 9, 40]
        ])
        const second = yield* c.http(
          "GET",
          `/movies?limit=2&orderBy=rating&pageToken=${encodeURIComponent(first.body.nextPageToken)}`
        )
        assert.deepStrictEqual(second.body.movies.map((m: any) => m.metadata.title), ["Casablanca", "Heat"])
        assert.isUndefined(second.body.nextPageToken)
        const byTitle = yield* c.http("GET", "/movies")
        assert.deepStrictEqual(byTitle.body.movies.map((m: any) => m.metadata.id), [
          "m1",
          "m5",
          "m6",
          "m0",
          "m3",
          "m2",
          "m4"
        ])
      }))

    it.scoped("BatchGetMovieDetails: the known ids in the order asked, the unknown ones listed, over gRPC and HTTP", () =>
      Effect.gen(function*() {
        const c = yield* clients
        yield* c.put("b1", "Batch One")
        yield* c.put("b2", "Batch Two")
        yield* c.rate("b2", [6, 8])
        const batch = yield* c.batch(["b2", "nope", "b1", "b2"])
        assert.deepStrictEqual(batch.movies.map((m) => [m.metadata!.id, m.rating, m.ratingsCount]), [
          ["b2", 7, 2],
          ["b1", undefined, 0],
          ["b2", 7, 2]
        ])
        assert.deepStrictEqual(batch.missingMovieIds, ["nope"])
        assert.deepStrictEqual(yield* c.batch([]), { movies: [], missingMovieIds: [] })
        const hundred = yield* c.batch(Array.from({ length: 100 }, (_, i) => (i === 50 ? "b1" : `none-${i}`)))
        assert.deepStrictEqual(hundred.movies.map((m) => m.metadata!.id), ["b1"])
        assert.lengthOf(hundred.missingMovieIds, 99)

        const http = yield* c.http("POST", "/movies:batchGet", { ids: ["nope", "b2"] })
        assert.strictEqual(http.status, 200)
        assert.deepStrictEqual(http.body, {
          movies: [{
            metadata: { id: "b2", title: "Batch Two", description: "", director: "" },
            rating: 7,
            ratingsCount: 2
          }],
          missingIds: ["nope"]
        })
        // The OpenAPI document names the path as it is called.
        const openapi = yield* c.http("GET", "/openapi.json")
        assert.includeMembers(Object.keys(openapi.body.paths), ["/movie", "/movies", "/movies:batchGet"])
      }))
  })

  layer(System.layerTest(), { excludeTestServices: true, timeout: "60 seconds" })(
    "paging while movies are added",
    (it) => {
      it.scoped("every movie that existed throughout is listed exactly once while a writer adds movies all along", () =>
        Effect.gen(function*() {
          const c = yield* clients
          const existing = Array.from({ length: 120 }, (_, i) => ({ id: `old-${i}`, title: `T${(i * 37) % 120}` }))
          yield* Effect.forEach(existing, (m) => c.put(m.id, m.title), { discard: true, concurrency: 8 })
          const added = yield* Ref.make(0)
          // Titles spread over the whole range: before the cursor, after it, equal to listed ones.
          const writer = yield* Effect.fork(Effect.forever(
            Ref.getAndUpdate(added, (n) => n + 1).pipe(
              Effect.flatMap((n) => c.put(`new-${n}`, `T${(n * 53) % 130}`))
            )
          ))
          // A page at a time, letting the writer in between.
          const listed = yield* allPages(c, { pageSize: 7 }, Effect.yieldNow())
          yield* Fiber.interrupt(writer)
          const ids = listed.map((m) => m.metadata!.id)
          assert.strictEqual(new Set(ids).size, ids.length, "a movie listed twice")
          for (const m of existing) assert.include(ids, m.id)
          assert.isAbove(yield* Ref.get(added), 0, "the writer added movies during the listing")
          assert.isAbove(ids.filter((id) => id.startsWith("new-")).length, 0)
        }))
    }
  )

  layer(System.layerTest(), { excludeTestServices: true, timeout: "60 seconds" })("bad input", (it) => {
    it.scoped("ListMovies and BatchGetMovieDetails refuse bad input naming the field, over gRPC and HTTP", () =>
      Effect.gen(function*() {
        const c = yield* clients
        yield* Effect.forEach(["a", "b", "c"], (id) => c.put(id, id.toUpperCase()), { discard: true })
        const sizes = "page_size: must be an integer from 1 to 100 (0 or unset: 20)"
        yield* expectInvalid(c.list({ pageSize: 101 }), sizes)
        yield* expectInvalid(c.list({ pageSize: -1 }), sizes)
        yield* expectInvalid(c.list({ orderBy: "year" }), `order_by: must be "title" or "rating"`)
        yield* expectInvalid(c.list({ minRatingsCount: 2 }), `min_ratings_count: applies only to order_by "rating"`)
        yield* expectInvalid(
          c.list({ orderBy: "rating", minRatingsCount: -3 }),
          "min_ratings_count: must be a non-negative integer"
        )

        const { nextPageToken } = yield* c.list({ pageSize: 1 })
        assert.notStrictEqual(nextPageToken, "")
        const notIssued = "page_token: is not a page token this service issued (pass next_page_token back unchanged)"
        // Cut, one character changed, garbage, the payload re-signed by nobody.
        const [payload, sum] = nextPageToken.split(".")
        const edited = Buffer.from(Buffer.from(payload!, "base64url").toString().replace("A", "B")).toString(
          "base64url"
        )
        for (
          const token of [
            nextPageToken.slice(0, -1),
            `${edited}.${sum}`,
            "garbage",
            `${payload}.`,
            `${nextPageToken}.x`
          ]
        ) {
          yield* expectInvalid(c.list({ pageSize: 1, pageToken: token }), notIssued)
        }
        yield* expectInvalid(
          c.list({ pageSize: 1, pageToken: nextPageToken, orderBy: "rating" }),
          "page_token: was issued for another order_by or min_ratings_count: send the same ones as for the first page"
        )
        // The page size may change from page to page.
        assert.lengthOf((yield* c.list({ pageSize: 2, pageToken: nextPageToken })).movies, 2)

        yield* expectInvalid(
          c.batch(Array.from({ length: 101 }, (_, i) => `m${i}`)),
          "movie_ids: must hold at most 100 ids"
        )
        yield* expectInvalid(c.batch(["a", ""]), "movie_ids.1: must not be empty")

        const problems = [
          ["GET", "/movies?limit=101", undefined, "limit", sizes.replace("page_size", "limit")],
          ["GET", "/movies?limit=ten", undefined, "limit", sizes.replace("page_size", "limit")],
          ["GET", "/movies?orderBy=year", undefined, "orderBy", `orderBy: must be "title" or "rating"`],
          [
            "GET",
            "/movies?pageToken=garbage",
            undefined,
            "pageToken",
            "pageToken: is not a page token this service issued (pass nextPageToken back unchanged)"
          ],
          ["POST", "/movies:batchGet", { ids: Array.from({ length: 101 }, (_, i) => `m${i}`) }, "ids", undefined],
          ["POST", "/movies:batchGet", { ids: ["a", " b"] }, "ids.1", undefined]
        ] as const
        for (const [method, path, body, field, message] of problems) {
          const answer = yield* c.http(method, path, body)
          assert.strictEqual(answer.status, 400, path)
          assert.strictEqual(answer.body.code, "INVALID_ARGUMENT")
          assert.strictEqual(answer.body.field, field, JSON.stringify(answer.body))
          if (message !== undefined) assert.strictEqual(answer.body.message, message)
        }
      }))
  })
})
