/**
 * Every server answers the standard health service and server reflection built
 * from the buf descriptor set, so grpcurl and buf curl need no .proto files.
 */
import { assert, describe, layer } from "@effect/vitest"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Grpc from "@movieapp/testkit/Grpc"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"
import * as System from "../src/System.js"

const buf = resolve(fileURLToPath(new URL("../../../node_modules/.bin/buf", import.meta.url)))

/** The real `buf curl` client, resolving everything through reflection. */
const bufCurl = (args: ReadonlyArray<string>) =>
  Effect.async<string, Error>((resume) => {
    execFile(buf, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], (error, stdout, stderr) =>
      resume(error ? Effect.fail(new Error(`${error.message}\n${stderr}`)) : Effect.succeed(stdout)))
  })

/** What every server serves besides its own services, as other gRPC servers list them. */
const standard = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection"
]

const servers = [
  { name: "metadata", ports: MetadataServer.Ports, services: ["MetadataService", "movieapp.v1.MetadataService"] },
  { name: "rating", ports: RatingServer.Ports, services: ["RatingService", "movieapp.v1.RatingService"] },
  { name: "movie", ports: MovieServer.Ports, services: ["MovieService", "movieapp.v1.MovieService"] }
] as const

describe("health and reflection", () => {
  layer(System.layerTest(), { excludeTestServices: true, timeout: "60 seconds" })("every server", (it) => {
    for (const server of servers) {
      it.effect(`${server.name}: health is SERVING for the server and each service; unknown services are NOT_FOUND`, () =>
        Effect.gen(function*() {
          const address = `127.0.0.1:${(yield* server.ports).grpc}`
          for (const service of ["", ...server.services]) {
            assert.strictEqual(yield* Grpc.healthCheck(address, service), "SERVING", service)
          }
          const unknown = yield* Effect.flip(Grpc.healthCheck(address, "no.Such"))
          assert.strictEqual(unknown.code, 5)
        }))

      it.effect(`${server.name}: reflection lists exactly its services, health and reflection, and resolves them`, () =>
        Effect.gen(function*() {
          const address = `127.0.0.1:${(yield* server.ports).grpc}`
          const listed = yield* Grpc.reflect(address, { listServices: "*" })
          assert.deepStrictEqual(
            listed.listServicesResponse.service.map((s: { name: string }) => s.name).sort(),
            [...server.services, ...standard].sort()
          )
          for (const symbol of [...server.services, ...standard]) {
            const found = yield* Grpc.reflect(address, { fileContainingSymbol: symbol })
            assert.isAbove(found.fileDescriptorResponse?.fileDescriptorProto?.length ?? 0, 0, symbol)
          }
        }))
    }

    it.effect("buf curl lists and calls services through reflection alone, including the original names", () =>
      Effect.gen(function*() {
        const movie = (yield* MovieServer.Ports).grpc
        const listed = (yield* bufCurl(["--list-services", `http://127.0.0.1:${movie}`])).trim().split("\n").sort()
        assert.deepStrictEqual(listed, ["MovieService", ...standard, "movieapp.v1.MovieService"].sort())
        const rating = (yield* RatingServer.Ports).grpc
        yield* bufCurl([
          "-H",
          `authorization: ${(yield* Tokens.user("u")).authorization}`,
          "-d",
          "{\"record_id\":\"r1\",\"record_type\":\"movie\",\"user_id\":\"u\",\"rating_value\":7}",
          `http://127.0.0.1:${rating}/RatingService/PutRating`
        ])
        const answer = JSON.parse(
          yield* bufCurl([
            "-d",
            "{\"record_id\":\"r1\",\"record_type\":\"movie\"}",
            `http://127.0.0.1:${rating}/RatingService/GetAggregatedRating`
          ])
        )
        assert.deepStrictEqual(answer, { ratingValue: 7 })
        const health = JSON.parse(yield* bufCurl([`http://127.0.0.1:${rating}/grpc.health.v1.Health/Check`]))
        assert.deepStrictEqual(health, { status: "SERVING" })
      }))
  })
})
