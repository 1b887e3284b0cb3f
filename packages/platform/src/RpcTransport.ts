/**
 * Effect RPC between services, chosen here once for every server and client:
 * @effect/rpc's socket protocol over long-lived TCP connections, MessagePack
 * frames, many calls multiplexed on each connection. A service serves its RPC
 * group on a port of its own (`SERVER_RPC_PORT`); every served call is counted
 * and timed like a gRPC call. With tracing on, the trace context travels with
 * each request (client and server spans `RpcClient.<tag>` / `RpcServer.<tag>`);
 * with tracing off no span is made at all.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import * as Socket from "@effect/platform/Socket"
import * as SocketServer from "@effect/platform/SocketServer"
import { type Rpc, RpcClient, type RpcGroup, RpcMiddleware, RpcSerialization, RpcServer } from "@effect/rpc"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import {
  Cause,
  Context,
  Duration,
  Effect,
  Exit,
  FiberRef,
  FiberSet,
  Layer,
  Option,
  Runtime,
  Schedule,
  type Scope
} from "effect"
import * as Net from "node:net"
import { performance } from "node:perf_hooks"
import * as NodeTls from "node:tls"
import { DEFAULT_MAX_RPC_MESSAGE_BYTES } from "./Config.js"
import * as Metrics from "./Metrics.js"
import * as Tls from "./Tls.js"

/** The address of one RPC endpoint. */
export interface Address {
  readonly host: string
  readonly port: number
}

const serialization = (maxFrameBytes: number) =>
  RpcSerialization.makeMsgPack({ useRecords: true, maxBufferSize: maxFrameBytes })

/** The group's class name (`MetadataRpcs`): `rpc.service` in metrics and spans. */
const serviceName = (group: RpcGroup.RpcGroup<any>): string =>
  (group as unknown as { readonly name?: string }).name ?? "rpc"

/**
 * Coalesces the writes of one turn of the event loop into one system call:
 * cork, and uncork once the turn's I/O callbacks have run (setImmediate; on the
 * next tick, each incoming gRPC call would still write alone). A message is a
 * few dozen bytes and a write to a loopback socket costs tens of µs, the
 * receiver's work included: measured under load, per GetMovieDetails the three
 * services made about 4 write system calls before, and 0.5 after.
 */
const batchWrites = (socket: Net.Socket): Net.Socket => {
  const write = socket.write.bind(socket) as (...args: Array<unknown>) => boolean
  let corked = false
  const uncork = () => {
    corked = false
    socket.uncork()
  }
  socket.write = ((...args: Array<unknown>) => {
    if (!corked) {
      corked = true
      socket.cork()
      setImmediate(uncork)
    }
    return write(...args)
  }) as typeof socket.write
  return socket
}

/** The outcome of a call as a metric label: OK, the typed error's tag, CANCELLED or DEFECT. */
const statusOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "OK"
  if (Cause.isInterruptedOnly(exit.cause)) return "CANCELLED"
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "None") return "DEFECT"
  const error = failure.value
  return typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
    ? error._tag
    : "ERROR"
}

/** What a caller gets for a bug in a handler: that it was one, not its text. */
export class InternalError extends Error {
  constructor() {
    super("internal error")
    this.name = "InternalError"
  }
}

/** Counts, times and tracks every served call (through @effect/rpc's public middleware). */
class ServedCalls
  extends RpcMiddleware.Tag<ServedCalls>()("@movieapp/platform/RpcTransport/ServedCalls", { wrap: true })
{}

/** Where the RPC listener is bound (differs from the configured port when that was 0). */
export class RpcListener extends Context.Tag("@movieapp/platform/RpcTransport/RpcListener")<RpcListener, {
  readonly port: number
}>() {}

export interface ServerOptions {
  readonly host: string
  readonly port: number
  /** A peer sending a larger frame is disconnected. */
  readonly maxFrameBytes?: number | undefined
  /** How long a graceful stop waits for the calls in flight. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /** Serve TLS with this identity, demanding a client certificate when it has a CA; plaintext when absent. */
  readonly tls?: Tls.Certificates | undefined
}

/**
 * The socket server of {@link serve} over TLS: each connection is handed on once
 * its handshake passed, which with a CA includes a client certificate the CA
 * signed; a client refused there is logged with the reason and never reaches
 * the RPC server. NodeSocketServer serves plain TCP only, hence this one, built
 * on the same public pieces (NodeSocket.fromDuplex, SocketServer).
 */
const tlsSocketServer = (
  options: ServerOptions,
  certificates: Tls.Certificates
): Effect.Effect<SocketServer.SocketServer["Type"], SocketServer.SocketServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const log = Runtime.runFork(runtime)
    const server = NodeTls.createServer({ ...Tls.serverOptions(certificates, "rpc"), noDelay: true })
    yield* Tls.follow(certificates, server)
    const pending: Array<NodeTls.TLSSocket> = []
    let onConnection: (connection: NodeTls.TLSSocket) => void = (connection) => void pending.push(connection)
    server.on("secureConnection", (connection) => {
      // Until the RPC server reads it, an error must not go unhandled; the socket reports it as closed.
      connection.on("error", () => undefined)
      onConnection(connection)
    })
    server.on("tlsClientError", (error, socket) =>
      log(
        Effect.logWarning("Effect RPC client refused by TLS").pipe(
          Effect.annotateLogs({
            "client.address": socket.remoteAddress ?? "",
            // OpenSSL's code (ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE) says it in a word.
            reason: (error as { readonly code?: string }).code ?? error.message.trim()
          })
        )
      ))
    yield* Effect.addFinalizer(() => Effect.async<void>((resume) => void server.close(() => resume(Effect.void))))
    yield* Effect.async<void, SocketServer.SocketServerError>((resume) => {
      const failed = (cause: Error) =>
        resume(Effect.fail(new SocketServer.SocketServerError({ reason: "Open", cause })))
      server.once("error", failed)
      server.listen({ host: options.host, port: options.port }, () => {
        server.off("error", failed)
        resume(Effect.void)
      })
    })
    const address = server.address() as Net.AddressInfo
    return SocketServer.SocketServer.of({
      address: { _tag: "TcpAddress", hostname: address.address, port: address.port },
      run: <R, E, _>(handler: (socket: Socket.Socket) => Effect.Effect<_, E, R>) =>
        Effect.gen(function*() {
          const runFork = yield* FiberSet.makeRuntime<R>()
          const serveOne = (connection: NodeTls.TLSSocket) => {
            const open = Effect.acquireRelease(
              Effect.suspend(() =>
                connection.destroyed
                  ? Effect.fail(new Socket.SocketCloseError({ reason: "Close", code: 1000 }))
                  : Effect.succeed(connection)
              ),
              () => Effect.sync(() => connection.destroySoon())
            )
            runFork(
              NodeSocket.fromDuplex(open).pipe(
                Effect.flatMap(handler),
                Effect.catchAllCause((cause) => Effect.logDebug("Effect RPC connection ended", cause)),
                Effect.provideService(NodeSocket.NetSocket, connection)
              )
            )
          }
          onConnection = serveOne
          for (const connection of pending.splice(0)) serveOne(connection)
          return yield* Effect.never
        }).pipe(Effect.scoped)
    })
  })

/**
 * Serves `group` on host:port. A graceful stop waits (up to `shutdownTimeout`)
 * until no call is in flight, then closes the listener and every connection;
 * callers that still send are refused and retry elsewhere, which is why a
 * service leaves discovery before its servers stop.
 */
export const serve = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  options: ServerOptions
): Layer.Layer<RpcListener, SocketServer.SocketServerError, Rpc.ToHandler<Rpcs> | Rpc.Context<Rpcs>> =>
  Layer.scoped(
    RpcListener,
    Effect.gen(function*() {
      const listener = options.tls === undefined
        ? yield* NodeSocketServer.make({ host: options.host, port: options.port, noDelay: true })
        : yield* tlsSocketServer(options, options.tls)
      const server = SocketServer.SocketServer.of({
        ...listener,
        // The listener hands each connection's net.Socket to its handler, before any write.
        run: (handler) =>
          listener.run((socket) =>
            Effect.flatMap(Effect.serviceOption(NodeSocket.NetSocket), (connection) => {
              Option.map(connection, batchWrites)
              return handler(socket)
            })
          )
      })
      const service = serviceName(group)
      const recorders = new Map<string, Metrics.CallRecorder>()
      for (const tag of group.requests.keys()) {
        recorders.set(tag, Metrics.serverCallRecorder("effect_rpc", service, tag))
      }
      let inFlight = 0
      const idle = yield* Effect.makeLatch(true)
      const served = ServedCalls.of(({ next, rpc }) =>
        Effect.suspend(() => {
          const started = performance.now()
          const record = recorders.get(rpc._tag)!
          if (inFlight++ === 0) idle.unsafeClose()
          return next.pipe(
            Effect.onExit((exit) => {
              if (--inFlight === 0) idle.unsafeOpen()
              record(statusOf(exit), (performance.now() - started) / 1000)
              return Effect.void
            }),
            // A bug's text is for the log, never for the caller.
            Effect.catchAllDefect((defect) =>
              Effect.zipRight(
                Effect.logError("Effect RPC handler failed", Cause.die(defect)).pipe(
                  Effect.annotateLogs("rpc.method", rpc._tag)
                ),
                Effect.die(new InternalError())
              )
            )
          )
        })
      )
      const tracing = yield* FiberRef.get(FiberRef.currentTracerEnabled)
      yield* RpcServer.make(group.middleware(ServedCalls), {
        // A bug in one call must not fail the other calls of its connection.
        disableFatalDefects: true,
        disableTracing: !tracing,
        spanAttributes: { "rpc.system": "effect_rpc", "rpc.service": service }
      }).pipe(
        Effect.provide(RpcServer.layerProtocolSocketServer),
        Effect.provideService(SocketServer.SocketServer, server),
        Effect.provideService(
          RpcSerialization.RpcSerialization,
          serialization(options.maxFrameBytes ?? DEFAULT_MAX_RPC_MESSAGE_BYTES)
        ),
        Effect.provideService(ServedCalls, served),
        Effect.interruptible,
        Effect.forkScoped
      )
      // Added last, so it runs first on release: calls in flight finish before the server goes.
      yield* Effect.addFinalizer(() =>
        idle.await.pipe(
          Effect.timeoutTo({
            duration: options.shutdownTimeout ?? "10 seconds",
            onSuccess: () => "drained",
            onTimeout: () => "cut off"
          }),
          Effect.flatMap((outcome) => Effect.logInfo(`Effect RPC server stopping: calls in flight ${outcome}`))
        )
      )
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      yield* Effect.logInfo("Effect RPC server listening").pipe(
        Effect.annotateLogs({ "rpc.port": port, "rpc.service": service })
      )
      return RpcListener.of({ port })
    })
  ) as Layer.Layer<RpcListener, SocketServer.SocketServerError, Rpc.ToHandler<Rpcs> | Rpc.Context<Rpcs>> // less ServedCalls, provided here

export interface ClientOptions {
  /** How long opening a connection may take. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Frames larger than this from the server fail the connection. */
  readonly maxFrameBytes?: number | undefined
  /** Connect over TLS, verifying the server and presenting this identity's certificate; plaintext when absent. */
  readonly tls?: Tls.ClientTls | undefined
}

/**
 * A typed client of the service at `address`, over one connection that is opened
 * at once and reopened after a failure (with growing delays, up to every 5
 * seconds) for as long as the scope lives. Calls made while the connection is
 * down fail at once with an RpcClientError, so a caller can go elsewhere.
 */
export const makeClient = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  address: Address,
  options: ClientOptions = {}
): Effect.Effect<RpcClient.RpcClient<Rpcs, RpcClientError>, never, Scope.Scope | Rpc.MiddlewareClient<Rpcs>> =>
  Effect.gen(function*() {
    // NodeSocket.makeNet, with writes batched per turn of the event loop.
    const open = Effect.acquireRelease(
      Effect.async<Net.Socket, Socket.SocketError>((resume) => {
        const tls = options.tls
        const target = { host: address.host, port: address.port, noDelay: true }
        const connection = batchWrites(
          tls === undefined ? Net.createConnection(target) : NodeTls.connect({ ...target, ...Tls.clientOptions(tls) })
        )
        connection.once(tls === undefined ? "connect" : "secureConnect", () => resume(Effect.succeed(connection)))
        connection.once(
          "error",
          (cause) => resume(Effect.fail(new Socket.SocketGenericError({ reason: "Open", cause })))
        )
        return Effect.sync(() => connection.destroy())
      }),
      (connection) => Effect.sync(() => connection.destroy())
    )
    // Only builds the socket: opening it happens, and fails, inside the protocol.
    const socket = yield* NodeSocket.fromDuplex(open, { openTimeout: options.connectTimeout ?? Duration.seconds(2) })
    const protocol = yield* RpcClient.makeProtocolSocket({
      retrySchedule: Schedule.exponential("100 millis", 2).pipe(Schedule.union(Schedule.spaced("5 seconds")))
    }).pipe(
      Effect.provideService(Socket.Socket, socket),
      Effect.provideService(
        RpcSerialization.RpcSerialization,
        serialization(options.maxFrameBytes ?? DEFAULT_MAX_RPC_MESSAGE_BYTES)
      )
    )
    const tracing = yield* FiberRef.get(FiberRef.currentTracerEnabled)
    return yield* RpcClient.make(group, {
      disableTracing: !tracing,
      spanAttributes: {
        "rpc.system": "effect_rpc",
        "rpc.service": serviceName(group),
        "server.address": address.host,
        "server.port": address.port
      }
    }).pipe(Effect.provideService(RpcClient.Protocol, protocol))
  })

/** Parses `host:port`, `address:port` or `[IPv6 address]:port`. */
export const parseAddress = (text: string): Address | undefined => {
  const match = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text.trim())
  if (match === null) return undefined
  const port = Number(match[3])
  if (!(port >= 1 && port <= 65535)) return undefined
  if (match[1] !== undefined && Net.isIP(match[1]) !== 6) return undefined
  return { host: match[1] ?? match[2]!, port }
}
