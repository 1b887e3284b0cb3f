/**
 * The fence around GrpcServer.rekeyPackageless, the one place the project writes
 * a library's private fields: it fails when @grpc/reflection changes how it keys
 * symbols of package-less files (then the re-keying goes), and shows that, with
 * it, a real reflection client finds the original API's names as clients spell
 * them, and lists the reflection service itself, as other servers do.
 */
import { assert, describe, it } from "@effect/vitest"
import * as protoLoader from "@grpc/proto-loader"
import { ReflectionService } from "@grpc/reflection"
import { descriptorSet } from "@movieapp/proto/gen/descriptorSet"
import * as legacy from "@movieapp/proto/gen/legacy/movie"
import * as Grpc from "@movieapp/testkit/Grpc"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import * as GrpcServer from "../src/GrpcServer.js"
import * as Readiness from "../src/Readiness.js"

const packageDefinition = () => protoLoader.loadFileDescriptorSetFromBuffer(descriptorSet)

describe("gRPC reflection of the original, package-less API", () => {
  it("@grpc/reflection still keys package-less symbols with a leading dot (when this fails, delete rekeyPackageless)", () => {
    const reflection = new ReflectionService(packageDefinition())
    for (const implementation of ["v1", "v1Alpha"]) {
      const { services, symbols } =
        (reflection as unknown as Record<string, { services: object; symbols: object }>)[implementation]!
      assert.property(symbols, ".MetadataService", implementation)
      assert.notProperty(symbols, "MetadataService", implementation)
      assert.property(services, ".MetadataService", implementation)
      assert.property(symbols, "movieapp.v1.MetadataService", implementation)
    }
  })

  it("rekeyPackageless refuses a layout it does not know, naming itself", () => {
    const reflection = new ReflectionService(packageDefinition())
    Object.assign(reflection, { v1: undefined })
    assert.throws(
      () => GrpcServer.rekeyPackageless(reflection),
      /rekeyPackageless in packages\/platform\/src\/GrpcServer\.ts/
    )
  })

  it.live(
    "a server answers the names as clients spell them, and lists exactly its services with health and reflection",
    () =>
      Effect.gen(function*() {
        const unused = () => Effect.dieMessage("not called")
        const server = yield* Layer.build(
          GrpcServer.layer({
            host: "127.0.0.1",
            port: 0,
            services: [GrpcServer.service(legacy.MetadataServiceService, { getMetadata: unused, putMetadata: unused })],
            descriptorSet
          }).pipe(Layer.provide(Readiness.layer), Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)))
        )
        const address = `127.0.0.1:${Context.get(server, GrpcServer.GrpcServer).port}`
        const listed = yield* Grpc.reflect(address, { listServices: "*" })
        const services = [
          "MetadataService",
          "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection"
        ]
        assert.deepStrictEqual(
          listed.listServicesResponse.service.map((s: { name: string }) => s.name).sort(),
          services.sort()
        )
        for (const symbol of [...services, "MetadataService.GetMetadata", "GetMetaDataRequest"]) {
          const found = yield* Grpc.reflect(address, { fileContainingSymbol: symbol })
          assert.isAbove(found.fileDescriptorResponse?.fileDescriptorProto?.length ?? 0, 0, symbol)
        }
        const missing = yield* Grpc.reflect(address, { fileContainingSymbol: "movieapp.v1.NoSuchService" })
        assert.strictEqual(missing.errorResponse?.errorCode, 5)
      }).pipe(Effect.scoped),
    30_000
  )
})
