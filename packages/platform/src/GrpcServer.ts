/**
 * gRPC at the edge: a grpc-js server as a scoped layer whose unary handlers are
 * Effects. Every call is a server span (continuing the caller's W3C trace context
 * from its metadata) and is counted and timed by method and status. Every server
 * also serves the standard health service, driven by the service's readiness
 * checks, and server reflection built from a real descriptor set.
 */
import { BinaryReader } from "@bufbuild/protobuf/wire"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { ReflectionService } from "@grpc/reflection"
import { RateLimited } from "@movieapp/contracts/Auth"
import {
  Cause,
  Context,
  Data,
  Duration,
  Effect,
  Exit,
  FiberId,
  FiberRef,
  HashSet,
  Layer,
  LogLevel,
  Option,
  Runtime,
  type Scope,
  type Tracer
} from "effect"
import { camelToSnake } from "effect/String"
import { HealthImplementation } from "grpc-health-check"
import { performance } from "node:perf_hooks"
import { format } from "node:util"
import * as Deadline from "./Deadline.js"
import { Code, type GrpcStatusError, invalidArgument, rateLimited } from "./GrpcStatus.js"
import * as Metrics from "./Metrics.js"
import * as RateLimit from "./RateLimit.js"
import * as Readiness from "./Readiness.js"
import * as Telemetry from "./Telemetry.js"
import type * as Tls from "./Tls.js"

type RequestOf<M> = M extends { readonly requestDeserialize: (bytes: Buffer) => infer Req } ? Req : never
type ResponseOf<M> = M extends { readonly responseSerialize: (value: infer Res) => Buffer } ? Res : never

/** What a handler may know about the call it serves. */
export interface ServerCall {
  readonly path: string
  readonly metadata: grpc.Metadata
  /** The caller's address and port as grpc-js reports it (`127.0.0.1:50312`, `::1:50312`). */
  readonly peer: string
}

/** Effect handlers for every method of a generated grpc-js service definition. */
export type Handlers<S extends grpc.ServiceDefinition, R> = {
  readonly [K in keyof S]: (
    request: RequestOf<S[K]>,
    call: ServerCall
  ) => Effect.Effect<ResponseOf<S[K]>, GrpcStatusError, R>
}

export interface Service<R> {
  readonly name: string
  readonly definition: grpc.ServiceDefinition
  readonly handlers: Handlers<grpc.ServiceDefinition, R>
}

/** A request grpc-js received but that is no valid message: its handler answers INVALID_ARGUMENT with `details`. */
class UndecodableRequest {
  constructor(readonly details: string) {}
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
/** Set by {@link decodeUtf8} while a request is decoded (decoding is synchronous). */
let invalidUtf8 = false
/**
 * Protobuf strings must be UTF-8; the generated decoder would turn broken bytes
 * into U+FFFD, making different ids a client sent one. Such a string decodes to
 * a lone surrogate instead, which valid UTF-8 never decodes to, so the field can
 * be found and named. Short ASCII strings never come here (the reader has a
 * fast path for them), so the check costs only on other strings.
 */
const decodeUtf8 = (bytes: Uint8Array): string => {
  try {
    return strictUtf8.decode(bytes)
  } catch {
    invalidUtf8 = true
    return "\ud800"
  }
}

const LONE_SURROGATE = /\p{Cs}/u

/** The path of the first string in `value` holding a lone surrogate, in proto field names (`metadata.title`). */
const brokenStringAt = (value: unknown, path: string): string | undefined => {
  if (typeof value === "string") return LONE_SURROGATE.test(value) ? path : undefined
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return undefined
  for (const [key, item] of Object.entries(value)) {
    const at = Array.isArray(value)
      ? `${path}[${key}]`
      : path === ""
      ? camelToSnake(key)
      : `${path}.${camelToSnake(key)}`
    if (LONE_SURROGATE.test(key)) return at
    const found = brokenStringAt(item, at)
    if (found !== undefined) return found
  }
  return undefined
}

/**
 * A generated `requestDeserialize` that never throws (grpc-js would answer
 * INTERNAL): bytes that are no message, or hold a string that is not UTF-8,
 * become an {@link UndecodableRequest}. ts-proto's deserializers hand their
 * argument to the message's `decode`, which takes a BinaryReader as well as
 * bytes: the reader is given the strict UTF-8 decoder.
 */
const strictly = (deserialize: (bytes: Buffer) => unknown) => (bytes: Buffer): unknown => {
  invalidUtf8 = false
  let message: unknown
  try {
    message = deserialize(new BinaryReader(bytes, decodeUtf8) as unknown as Buffer)
  } catch (error) {
    return new UndecodableRequest(
      `the request is not a valid protobuf message (${error instanceof Error ? error.message : String(error)})`
    )
  }
  return invalidUtf8
    ? new UndecodableRequest(`${brokenStringAt(message, "") ?? "request"}: must be valid UTF-8`)
    : message
}

/**
 * Pairs a generated service definition with its Effect handlers. Requests that
 * cannot be decoded (not protobuf, a string that is not UTF-8) are answered
 * INVALID_ARGUMENT before any handler runs.
 */
export const service = <S extends grpc.ServiceDefinition, R = never>(
  definition: S,
  handlers: Handlers<S, R>
): Service<R> => {
  const firstPath = Object.values(definition)[0]?.path ?? ""
  const strict: Record<string, grpc.MethodDefinition<unknown, unknown>> = {}
  const guarded: Record<string, (request: unknown, call: ServerCall) => Effect.Effect<unknown, GrpcStatusError, R>> = {}
  for (const [name, method] of Object.entries(definition)) {
    strict[name] = { ...method, requestDeserialize: strictly(method.requestDeserialize) }
    const handler = (handlers as unknown as typeof guarded)[name]!
    guarded[name] = (request, call) =>
      request instanceof UndecodableRequest ? Effect.fail(invalidArgument(request.details)) : handler(request, call)
  }
  return {
    name: firstPath.slice(1, firstPath.lastIndexOf("/")),
    definition: strict as grpc.ServiceDefinition,
    handlers: guarded as unknown as Handlers<grpc.ServiceDefinition, R>
  }
}

export class GrpcBindError
  extends Data.TaggedError("GrpcBindError")<{ readonly address: string; readonly cause: unknown }>
{
  override get message() {
    return `cannot listen for gRPC on ${this.address}: ${String(this.cause)}`
  }
}

/** Binds under way: grpc-js logs a bind that fails besides returning the failure, which is what gets reported. */
let binding = 0

/**
 * grpc-js writes its own log lines (`E No address added...`) to stderr through
 * one process-wide logger: they become lines of the service's log, at their
 * level, except the repeat of a failed bind.
 */
const routeGrpcJsLogs = (runtime: Runtime.Runtime<never>) => {
  const runFork = Runtime.runFork(runtime)
  const log = (level: LogLevel.LogLevel) => (...args: Array<unknown>) => {
    if (level === LogLevel.Error && binding > 0) return
    runFork(Effect.logWithLevel(level, format(...args)).pipe(Effect.annotateLogs("component", "grpc-js")))
  }
  grpc.setLogger({ error: log(LogLevel.Error), info: log(LogLevel.Info), debug: log(LogLevel.Debug) })
}

/** The running server: where it listens, and its health status (SERVING or not), read and switched. */
export class GrpcServer extends Context.Tag("@movieapp/platform/GrpcServer")<GrpcServer, {
  readonly port: number
  readonly serving: Effect.Effect<boolean>
  readonly setServing: (serving: boolean) => Effect.Effect<void>
}>() {}

const trailersOf = (trailers: Readonly<Record<string, string>>) => {
  const metadata = new grpc.Metadata()
  for (const [key, value] of Object.entries(trailers)) metadata.set(key, value)
  return metadata
}

const toServiceError = (cause: Cause.Cause<GrpcStatusError>): Partial<grpc.StatusObject> => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const { code, details, trailers } = failure.value
    return trailers === undefined ? { code, details } : { code, details, metadata: trailersOf(trailers) }
  }
  if (Cause.isInterruptedOnly(cause)) return { code: Code.CANCELLED, details: "call cancelled" }
  // A defect is a bug or a broken dependency: its text is for the log, never for the caller.
  return { code: Code.INTERNAL, details: "internal error" }
}

const deadlineOf = (call: grpc.ServerUnaryCall<unknown, unknown>): number | undefined => {
  const deadline = call.getDeadline()
  const ms = deadline instanceof Date ? deadline.getTime() : deadline
  return Number.isFinite(ms) ? ms : undefined
}

/** The caller's W3C trace context, when its metadata carries one. */
const traceParentOf = (metadata: grpc.Metadata): Option.Option<Tracer.ExternalSpan> => {
  const [traceparent] = metadata.get("traceparent")
  if (traceparent === undefined) return Option.none()
  const tracestate = metadata.get("tracestate")
  return Telemetry.extract({
    traceparent: String(traceparent),
    tracestate: tracestate.length === 0 ? undefined : tracestate.map(String).join(",")
  })
}

/** Interrupts a call's fiber when the server's bound on it passes. */
const timedOut = FiberId.make(-504, 0)

/**
 * One unary method. The path of a call is budgeted: one fiber, started at once
 * (no scheduler hop), with the deadline set in its refs; a span only when tracing
 * is on; the status recorded when the fiber ends.
 */
const unary = <Req, Res, R>(
  runtime: Runtime.Runtime<R>,
  path: string,
  handler: (request: Req, call: ServerCall) => Effect.Effect<Res, GrpcStatusError, R>,
  options: {
    readonly tracing: boolean
    readonly callTimeout: number | undefined
    readonly limiter: RateLimit.Limiter | undefined
  }
): grpc.handleUnaryCall<Req, Res> => {
  const runFork = Runtime.runFork(runtime)
  const runLog = Runtime.runFork(runtime)
  const fullMethod = path.slice(1)
  const service = fullMethod.slice(0, fullMethod.lastIndexOf("/"))
  const method = fullMethod.slice(service.length + 1)
  const attributes = { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method }
  const record = Metrics.serverCallRecorder("grpc", service, method)
  const traced = (program: Effect.Effect<Res, GrpcStatusError, R>, metadata: grpc.Metadata) => {
    const parent = traceParentOf(metadata)
    return Effect.withSpan(
      Effect.onExit(program, (exit) =>
        Effect.annotateCurrentSpan(
          "rpc.grpc.status_code",
          Exit.isSuccess(exit) ? Code.OK : toServiceError(exit.cause).code ?? Code.UNKNOWN
        )),
      fullMethod,
      {
        kind: "server",
        attributes,
        captureStackTrace: false,
        ...(Option.isSome(parent) ? { parent: parent.value } : {})
      }
    )
  }
  const { limiter } = options
  return (call, callback) => {
    const started = performance.now()
    if (limiter !== undefined) {
      // Refused before any fiber starts: a noisy caller costs one map lookup a call.
      const wait = limiter(RateLimit.fromGrpcPeer(call.getPeer()))
      if (wait > 0) {
        record("RESOURCE_EXHAUSTED", (performance.now() - started) / 1000)
        const refusal = rateLimited(new RateLimited({ retryAfterMillis: wait }).message, wait)
        return callback(toServiceError(Cause.fail(refusal)) as grpc.ServerErrorResponse)
      }
    }
    let deadline = deadlineOf(call)
    // The caller's deadline is enforced by grpc-js (it answers DEADLINE_EXCEEDED and
    // cancels the call); the server's own bound, when earlier, by a timer here.
    let timer: ReturnType<typeof setTimeout> | undefined
    if (options.callTimeout !== undefined && (deadline === undefined || deadline - Date.now() > options.callTimeout)) {
      deadline = Date.now() + options.callTimeout
      timer = setTimeout(() => fiber.unsafeInterruptAsFork(timedOut), options.callTimeout)
    }
    const program = handler(call.request, {
      path,
      metadata: call.metadata,
      get peer() {
        return call.getPeer()
      }
    })
    const fiber = runFork(options.tracing ? traced(program, call.metadata) : program, {
      immediate: true,
      ...(deadline === undefined ? {} : { updateRefs: Deadline.setIn(deadline) })
    })
    let done = false
    // grpc-js also emits "cancelled" after a call completed normally: only interrupt live work.
    const onCancelled = () => {
      if (!done) fiber.unsafeInterruptAsFork(FiberId.none)
    }
    call.once("cancelled", onCancelled)
    fiber.addObserver((exit) => {
      done = true
      if (timer !== undefined) clearTimeout(timer)
      call.removeListener("cancelled", onCancelled)
      const seconds = (performance.now() - started) / 1000
      if (call.cancelled) {
        // The caller is gone, or grpc-js already answered DEADLINE_EXCEEDED.
        const expired = deadline !== undefined && Date.now() >= deadline
        return record(expired ? "DEADLINE_EXCEEDED" : "CANCELLED", seconds)
      }
      if (Exit.isSuccess(exit)) {
        record("OK", seconds)
        return callback(null, exit.value)
      }
      const cause = exit.cause
      const error =
        timer !== undefined && Cause.isInterruptedOnly(cause) && HashSet.has(Cause.interruptors(cause), timedOut)
          ? { code: Code.DEADLINE_EXCEEDED, details: `deadline exceeded: no answer within ${options.callTimeout} ms` }
          : toServiceError(cause)
      if (!Cause.isInterruptedOnly(cause) && !Cause.isFailType(cause)) {
        runLog(Effect.logError("gRPC handler failed", cause).pipe(Effect.annotateLogs("grpc.method", path)))
      }
      record(Code[error.code ?? Code.UNKNOWN], seconds)
      callback(error as grpc.ServerErrorResponse)
    })
  }
}

/** The indexes of one of @grpc/reflection's implementations (v1, v1alpha), keyed by fully qualified name. */
interface ReflectionIndexes {
  symbols: Record<string, unknown>
  services: Record<string, unknown>
}

const isIndexes = (value: unknown): value is ReflectionIndexes =>
  typeof value === "object" && value !== null &&
  typeof (value as Partial<ReflectionIndexes>).symbols === "object" &&
  (value as Partial<ReflectionIndexes>).symbols !== null &&
  typeof (value as Partial<ReflectionIndexes>).services === "object" &&
  (value as Partial<ReflectionIndexes>).services !== null

/**
 * @grpc/reflection (1.0.4, its latest release) indexes the symbols of files
 * without a package, our original API, under a leading dot (".MetadataService"),
 * so clients asking for "MetadataService", as grpcurl and buf curl do, are
 * answered NOT_FOUND. No option or export reaches those indexes: they are
 * re-keyed here, the one place the project touches a library's private fields.
 * Fenced twice: a layout other than 1.0.4's stops the server at start with this
 * message, and test/GrpcReflection.test.ts fails when the library keys such
 * symbols without the dot (then delete this function).
 */
export const rekeyPackageless = (reflection: ReflectionService): void => {
  const { v1, v1Alpha } = reflection as unknown as { readonly v1?: unknown; readonly v1Alpha?: unknown }
  if (!isIndexes(v1) || !isIndexes(v1Alpha)) {
    throw new Error(
      "@grpc/reflection's implementations no longer hold `symbols` and `services` indexes: see rekeyPackageless in packages/platform/src/GrpcServer.ts"
    )
  }
  const rekey = (index: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(index).map(([name, value]) => [name.replace(/^\./, ""), value]))
  for (const implementation of [v1, v1Alpha]) {
    implementation.symbols = rekey(implementation.symbols)
    implementation.services = rekey(implementation.services)
  }
}

/**
 * Server reflection over the descriptor set (which must include the vendored
 * grpc/health and grpc/reflection protos), listing exactly the services this
 * server has, reflection itself included, as other servers do.
 */
const addReflection = (server: grpc.Server, descriptorSet: Buffer, serviceNames: ReadonlyArray<string>) => {
  // The library's list of services to expose is by its own names: with the dot for package-less ones (see rekeyPackageless).
  const services = serviceNames.flatMap((name) => name.includes(".") ? [name] : [name, `.${name}`])
  const reflection = new ReflectionService(protoLoader.loadFileDescriptorSetFromBuffer(descriptorSet), { services })
  rekeyPackageless(reflection)
  reflection.addToServer(server)
}

export interface Options<R> {
  readonly host: string
  readonly port: number
  readonly services: ReadonlyArray<Service<R>>
  /** Serialized FileDescriptorSet covering every service, grpc.health.v1 and grpc.reflection included, for server reflection. */
  readonly descriptorSet: Buffer
  /** How long a graceful stop waits for in-flight calls before cutting them off. */
  readonly shutdownTimeout?: Duration.DurationInput
  /** The largest request message accepted, in bytes; larger ones are answered RESOURCE_EXHAUSTED. grpc-js's 4 MiB by default. */
  readonly maxReceiveMessageBytes?: number | undefined
  /**
   * The longest a call may run when its caller set no earlier deadline: it is then
   * interrupted and answered DEADLINE_EXCEEDED. None by default.
   */
  readonly callTimeout?: Duration.DurationInput | undefined
  /** Serve TLS with this identity (and demand client certificates when it says so); plaintext when absent. */
  readonly tls?: Tls.Certificates | undefined
  /** Limits every call, per peer address (none by default). */
  readonly limiter?: RateLimit.Limiter | undefined
  /** How often the readiness checks run, and how long each may take (5 s and 2 s by default). */
  readonly healthCheck?: {
    readonly interval?: Duration.DurationInput | undefined
    readonly timeout?: Duration.DurationInput | undefined
  }
}

/**
 * grpc-js's credentials that follow the certificate files, through its public
 * certificate provider interface: a change reaches the server for its new
 * connections. The provider is handed its listeners by grpc-js while the server
 * is bound, and is given the current material at once.
 */
const credentials = (tls: Tls.Certificates): Effect.Effect<grpc.ServerCredentials, never, Scope.Scope> => {
  const identities = new Set<grpc.experimental.IdentityCertificateUpdateListener>()
  const authorities = new Set<grpc.experimental.CaCertificateUpdateListener>()
  const publish = (material: Tls.Material) => {
    for (const listener of identities) listener({ certificate: material.cert, privateKey: material.key })
    if (material.ca !== undefined) { for (const listener of authorities) listener({ caCertificate: material.ca }) }
  }
  // The current material goes to a new listener after the call returns, as grpc-js's own
  // file watcher does: grpc-js adds the server's watcher only after adding these listeners.
  const provider: grpc.experimental.CertificateProvider = {
    addIdentityCertificateListener: (listener) => {
      identities.add(listener)
      queueMicrotask(() => {
        const { cert, key } = tls.current()
        if (identities.has(listener)) listener({ certificate: cert, privateKey: key })
      })
    },
    removeIdentityCertificateListener: (listener) => identities.delete(listener),
    addCaCertificateListener: (listener) => {
      authorities.add(listener)
      queueMicrotask(() => {
        const { ca } = tls.current()
        if (ca !== undefined && authorities.has(listener)) listener({ caCertificate: ca })
      })
    },
    removeCaCertificateListener: (listener) => authorities.delete(listener)
  }
  const required = tls.requiresClientCertificate("grpc")
  // grpc-js 1.14 declares the first parameter the CA's provider, but uses it for the
  // identity (and the second for the CA): one provider serves both, and the second is
  // given only when clients must present a certificate (it makes the server ask for one).
  return Effect.acquireRelease(Effect.sync(() => tls.onChange(publish)), (stop) => Effect.sync(stop)).pipe(
    Effect.as(
      grpc.experimental.createCertificateProviderServerCredentials(provider, required ? provider : null, required)
    )
  )
}

/**
 * Binds on build, then reports SERVING while every readiness check passes and
 * NOT_SERVING while any fails. On release reports NOT_SERVING, stops accepting
 * calls, waits for in-flight calls (up to `shutdownTimeout`), then forces the rest
 * closed.
 */
export const layer = <R>(options: Options<R>): Layer.Layer<GrpcServer, GrpcBindError, R | Readiness.Readiness> =>
  Layer.scoped(
    GrpcServer,
    Effect.gen(function*() {
      const runtime = yield* Effect.runtime<R>()
      routeGrpcJsLogs(runtime as Runtime.Runtime<never>)
      const unaryOptions = {
        tracing: yield* FiberRef.get(FiberRef.currentTracerEnabled),
        callTimeout: options.callTimeout === undefined ? undefined : Duration.toMillis(options.callTimeout),
        limiter: options.limiter
      }
      // Channelz keeps statistics of every call for a debugging service we do not serve: about 5 % of a call.
      const server = new grpc.Server({
        "grpc.enable_channelz": 0,
        ...(options.maxReceiveMessageBytes === undefined
          ? {}
          : { "grpc.max_receive_message_length": options.maxReceiveMessageBytes })
      })
      for (const { definition, handlers } of options.services) {
        const implementation: grpc.UntypedServiceImplementation = {}
        for (const [method, handler] of Object.entries(handlers)) {
          implementation[method] = unary(runtime, definition[method]!.path, handler, unaryOptions)
        }
        server.addService(definition, implementation)
      }
      const names = options.services.map((s) => s.name)
      const health = new HealthImplementation({
        "": "NOT_SERVING",
        ...Object.fromEntries(names.map((n) => [n, "NOT_SERVING"]))
      })
      health.addToServer(server)
      addReflection(server, options.descriptorSet, [
        ...names,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection"
      ])

      let serving = false
      const setServing = (value: boolean) =>
        Effect.sync(() => {
          serving = value
          for (const name of ["", ...names]) health.setStatus(name, value ? "SERVING" : "NOT_SERVING")
        })

      const address = `${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}`
      const serverCredentials = options.tls === undefined
        ? grpc.ServerCredentials.createInsecure()
        : yield* credentials(options.tls)
      const port = yield* Effect.acquireRelease(
        Effect.async<number, GrpcBindError>((resume) => {
          binding++
          server.bindAsync(address, serverCredentials, (cause, port) => {
            binding--
            resume(cause ? Effect.fail(new GrpcBindError({ address, cause })) : Effect.succeed(port))
          })
        }),
        () =>
          setServing(false).pipe(
            Effect.zipRight(Effect.async<void>((resume) => server.tryShutdown(() => resume(Effect.void)))),
            Effect.timeoutTo({
              duration: options.shutdownTimeout ?? "10 seconds",
              onSuccess: () => Effect.void,
              onTimeout: () => Effect.sync(() => server.forceShutdown())
            }),
            Effect.flatten,
            Effect.zipRight(Effect.logInfo("gRPC server stopped"))
          )
      )
      // Started after the listener, so stopped before its release reports NOT_SERVING for good.
      yield* Readiness.watch(
        {
          interval: options.healthCheck?.interval ?? "5 seconds",
          timeout: options.healthCheck?.timeout ?? "2 seconds"
        },
        setServing
      )
      yield* Effect.logInfo("gRPC server listening").pipe(
        Effect.annotateLogs({ "grpc.port": port, "grpc.services": names.join(",") })
      )
      return GrpcServer.of({ port, serving: Effect.sync(() => serving), setServing })
    })
  )
