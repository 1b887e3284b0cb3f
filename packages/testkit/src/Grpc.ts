/**
 * gRPC as a test client sees it: real channels over real sockets, unary calls as
 * Effects that fail with the grpc-js ServiceError (code and details intact).
 */
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import * as GrpcHealth from "@movieapp/platform/GrpcHealth"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (error: grpc.ServiceError | null, response: Res) => void
) => grpc.ClientUnaryCall

/** A generated client for `address` (plaintext, or over TLS with `credentials`), closed with the scope. */
export const client = <C extends grpc.Client>(
  Client: new(address: string, credentials: grpc.ChannelCredentials) => C,
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()
) =>
  Effect.acquireRelease(
    Effect.sync(() => new Client(address, credentials)),
    (c) => Effect.sync(() => c.close())
  )

/** One unary call, with optional request metadata (e.g. a `traceparent`); interrupting the effect cancels the call. */
export const call = <Req, Res>(
  method: UnaryMethod<Req, Res>,
  request: Req,
  options: { readonly deadlineMs?: number; readonly metadata?: Readonly<Record<string, string>> } = {}
): Effect.Effect<Res, grpc.ServiceError> =>
  Effect.async<Res, grpc.ServiceError>((resume) => {
    const deadline = options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs }
    const metadata = new grpc.Metadata()
    for (const [key, value] of Object.entries(options.metadata ?? {})) metadata.set(key, value)
    const pending = method(request, metadata, deadline, (error, response) =>
      resume(error ? Effect.fail(error) : Effect.succeed(response)))
    return Effect.sync(() =>
      pending.cancel()
    )
  })

/**
 * One unary call of `path` whose request is `bytes` as they are, the way a
 * client that does not share our .proto files (or a broken one) may send them;
 * the answer's bytes as they are; `entries` go in its metadata.
 */
export const callRaw = (
  address: string,
  path: string,
  bytes: Uint8Array,
  entries: Readonly<Record<string, string>> = {}
): Effect.Effect<Buffer, grpc.ServiceError> =>
  Effect.acquireUseRelease(
    Effect.sync(() => new grpc.Client(address, grpc.credentials.createInsecure())),
    (client) =>
      Effect.async<Buffer, grpc.ServiceError>((resume) => {
        const identity = (value: Buffer) => value
        const metadata = new grpc.Metadata()
        for (const [key, value] of Object.entries(entries)) metadata.set(key, value)
        const pending = client.makeUnaryRequest(
          path,
          identity,
          identity,
          Buffer.from(bytes),
          metadata,
          (error, response) => resume(error ? Effect.fail(error) : Effect.succeed(response!))
        )
        return Effect.sync(() => pending.cancel())
      }),
    (client) => Effect.sync(() => client.close())
  )

/** The same method, sending `entries` (a bearer token) in every call's metadata. */
export const withMetadata = <Req, Res>(
  method: UnaryMethod<Req, Res>,
  entries: Readonly<Record<string, string>>
): UnaryMethod<Req, Res> =>
(request, metadata, options, callback) => {
  for (const [key, value] of Object.entries(entries)) metadata.set(key, value)
  return method(request, metadata, options, callback)
}

/** Binds a generated client's method, keeping `this`. */
export const method = <C, K extends keyof C>(c: C, name: K) =>
  (c[name] as (...args: Array<unknown>) => unknown).bind(c) as C[K]

/** grpc.health.v1.Health/Check of `service` ("" for the server as a whole). */
export const healthCheck = (address: string, service: string): Effect.Effect<string, grpc.ServiceError> =>
  GrpcHealth.check(address, service)

const reflectionPackage = grpc.loadPackageDefinition(
  protoLoader.loadSync(
    // The protocol as vendored in proto/, the one the servers' descriptor set holds.
    fileURLToPath(new URL("../../../proto/grpc/reflection/v1/reflection.proto", import.meta.url)),
    { keepCase: false, longs: String, defaults: true, oneofs: true }
  )
) as unknown as {
  grpc: {
    reflection: { v1: { ServerReflection: new(address: string, credentials: grpc.ChannelCredentials) => grpc.Client } }
  }
}

/** One request on the grpc.reflection.v1 stream, as a grpcurl or buf curl would send it. */
export const reflect = (
  address: string,
  request: Record<string, string>,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()
) =>
  Effect.async<Record<string, any>, Error>((resume) => {
    const c = new reflectionPackage.grpc.reflection.v1.ServerReflection(address, credentials) as any
    const stream = c.ServerReflectionInfo()
    stream.on("data", (response: Record<string, any>) => {
      resume(Effect.succeed(response))
      stream.end()
      c.close()
    })
    stream.on("error", (error: Error) => resume(Effect.fail(error)))
    stream.write({ host: "", ...request })
  })
