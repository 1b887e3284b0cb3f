/**
 * The Effect RPC transport over real sockets: long-lived connections shared by
 * many calls, and what a caller sees when the connection or the backend fails.
 */
import { Rpc, RpcGroup } from "@effect/rpc"
import { RpcClientError } from "@effect/rpc/RpcClientError"
import { assert, describe, it } from "@effect/vitest"
import * as TcpProxy from "@movieapp/testkit/TcpProxy"
import {
  Cause,
  Context,
  Deferred,
  type Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Option,
  Ref,
  Schedule,
  Schema,
  Scope
} from "effect"
import { Discovery } from "../src/Discovery.js"
import * as DiscoveryMemory from "../src/DiscoveryMemory.js"
import * as RpcTransport from "../src/RpcTransport.js"
import * as ServiceClient from "../src/ServiceClient.js"
import * as Tls from "../src/Tls.js"

class Probe extends RpcGroup.make(
  Rpc.make("Echo", { payload: { text: Schema.String }, success: Schema.String }),
  /** Answers only when interrupted... that is, never. */
  Rpc.make("Hang", { success: Schema.String }),
  /** Answers after a while. */
  Rpc.make("Slow", { payload: { millis: Schema.Number }, success: Schema.String }),
  /** A bug: the handler dies. */
  Rpc.make("Crash", { success: Schema.String })
) {}

/** What the handlers report: Hang calls started and interrupted. */
interface Signals {
  readonly hangStarted: Deferred.Deferred<void>
  readonly hangInterrupted: Deferred.Deferred<void>
}

const makeSignals = Effect.all({ hangStarted: Deferred.make<void>(), hangInterrupted: Deferred.make<void>() })

const handlers = (signals: Signals) =>
  Probe.toLayer({
    Echo: ({ text }) => Effect.succeed(text),
    Hang: () =>
      Deferred.succeed(signals.hangStarted, undefined).pipe(
        Effect.zipRight(Effect.never),
        Effect.onInterrupt(() => Deferred.succeed(signals.hangInterrupted, undefined))
      ),
    Slow: ({ millis }) => Effect.as(Effect.sleep(millis), "done"),
    Crash: () => Effect.die(new Error("secret detail of a bug"))
  })

/** A probe server on `port` (0: any) in a scope of its own, so a test can stop it and start another. */
const startServer = (
  options: {
    readonly port?: number
    readonly signals: Signals
    readonly maxFrameBytes?: number
    readonly shutdownTimeout?: Duration.DurationInput
  }
) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      RpcTransport.serve(Probe, {
        host: "127.0.0.1",
        port: options.port ?? 0,
        maxFrameBytes: options.maxFrameBytes,
        shutdownTimeout: options.shutdownTimeout ?? "5 seconds"
      }).pipe(Layer.provide(handlers(options.signals))),
      scope
    )
    return { port: Context.get(context, RpcTransport.RpcListener).port, stop: Scope.close(scope, Exit.void) }
  })

const clientOf = (port: number) => RpcTransport.makeClient(Probe, { host: "127.0.0.1", port })

/** Retries `effect` every 50 ms for up to 10 seconds: for what happens in the background (reconnecting). */
const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.retry(effect, Schedule.spaced("50 millis").pipe(Schedule.upTo("10 seconds")))

const quiet = Effect.provide(Logger.minimumLogLevel(LogLevel.None))

describe("RpcTransport", () => {
  it.live("many concurrent calls share one connection", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ signals: yield* makeSignals })
      const proxy = yield* TcpProxy.make({ host: "127.0.0.1", port: server.port })
      const client = yield* clientOf(proxy.port)
      const answers = yield* Effect.forEach(Array.from({ length: 200 }, (_, i) => `call ${i}`), (text) =>
        client.Echo({ text }), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(
        answers,
        Array.from({ length: 200 }, (_, i) =>
          `call ${i}`)
      )
      assert.strictEqual(yield* proxy.connections, 1)
    }).pipe(Effect.scoped, quiet))

  it.live("a connection that breaks fails the calls in flight with RpcClientError, and the client reconnects by itself", () =>
    Effect.gen(function*() {
      const signals = yield* makeSignals
      const server = yield* startServer({ signals })
      const proxy = yield* TcpProxy.make({ host: "127.0.0.1", port: server.port })
      const client = yield* clientOf(proxy.port)
      const hanging = yield* Effect.fork(client.Hang())
      yield* Deferred.await(signals.hangStarted)
      yield* proxy.cut
      const failure = yield* Fiber.join(hanging).pipe(Effect.flip)
      assert.instanceOf(failure, RpcClientError)
      // The backend learns that its caller is gone: the work is interrupted.
      yield* Deferred.await(signals.hangInterrupted)
      // While cut off, calls fail at once rather than wait.
      assert.instanceOf(yield* Effect.flip(client.Echo({ text: "while cut" })), RpcClientError)
      yield* proxy.restore
      assert.strictEqual(yield* eventually(client.Echo({ text: "again" })), "again")
    }).pipe(Effect.scoped, quiet))

  it.live("a backend that restarts on its address is called again through the same client", () =>
    Effect.gen(function*() {
      const signals = yield* makeSignals
      const first = yield* startServer({ signals })
      const client = yield* clientOf(first.port)
      assert.strictEqual(yield* client.Echo({ text: "before" }), "before")
      yield* first.stop
      // Until the client has seen the connection close, a call may still be on its way.
      assert.instanceOf(yield* eventually(Effect.flip(client.Echo({ text: "down" }))), RpcClientError)
      yield* startServer({ signals, port: first.port })
      assert.strictEqual(yield* eventually(client.Echo({ text: "after" })), "after")
    }).pipe(Effect.scoped, quiet))

  it.live("a backend that never answers: the caller's time limit ends the call and interrupts the backend's work", () =>
    Effect.gen(function*() {
      const signals = yield* makeSignals
      const server = yield* startServer({ signals })
      const discovery = yield* DiscoveryMemory.make({ ttl: "1 minute" })
      yield* discovery.register({ id: "probe-1", service: "probe", host: "127.0.0.1", port: server.port })
      const probe = yield* ServiceClient.make(Probe, { service: "probe", timeout: "300 millis", retries: 0 }).pipe(
        Effect.provideService(Discovery, discovery),
        Effect.provideService(Tls.ServerTls, Option.none())
      )
      const error = yield* Effect.flip(probe.call("Probe.Hang", (client) => client.Hang()))
      assert.deepInclude(error, { _tag: "DeadlineExceeded", operation: "Probe.Hang" })
      yield* Deferred.await(signals.hangInterrupted)
    }).pipe(Effect.scoped, quiet))

  it.live("a graceful stop lets the calls in flight finish before it closes the connections", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ signals: yield* makeSignals })
      const client = yield* clientOf(server.port)
      const slow = yield* Effect.fork(client.Slow({ millis: 300 }))
      // The call has reached the server once it runs there; Echo after it on the same connection proves it was sent.
      yield* client.Echo({ text: "sent" })
      yield* server.stop
      assert.strictEqual(yield* Fiber.join(slow), "done")
    }).pipe(Effect.scoped, quiet))

  it.live("a frame larger than the limit closes that peer's connection, and no other", () =>
    Effect.gen(function*() {
      const server = yield* startServer({ signals: yield* makeSignals, maxFrameBytes: 4096 })
      const [greedy, modest] = [yield* clientOf(server.port), yield* clientOf(server.port)]
      assert.strictEqual(yield* modest.Echo({ text: "small" }), "small")
      assert.instanceOf(yield* Effect.flip(greedy.Echo({ text: "x".repeat(64 * 1024) })), RpcClientError)
      assert.strictEqual(yield* modest.Echo({ text: "still served" }), "still served")
    }).pipe(Effect.scoped, quiet))

  it.live("a handler's defect is logged at ERROR, the caller learns only that it was an internal error, and the connection goes on", () =>
    Effect.gen(function*() {
      const logged = yield* Ref.make<ReadonlyArray<string>>([])
      const logger = Logger.make(({ cause, logLevel, message }) => {
        if (logLevel._tag === "Error") {
          Effect.runSync(Ref.update(logged, (all) => [...all, `${String(message)} ${Cause.pretty(cause)}`]))
        }
      })
      const server = yield* startServer({ signals: yield* makeSignals }).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      const client = yield* clientOf(server.port)
      const exit = yield* Effect.exit(client.Crash())
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      const text = Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
      assert.include(text, "internal error")
      assert.notInclude(text, "secret detail")
      assert.strictEqual(yield* client.Echo({ text: "next" }), "next")
      const lines = yield* Ref.get(logged)
      assert.strictEqual(lines.length, 1)
      assert.include(lines[0], "secret detail of a bug")
    }).pipe(Effect.scoped))
})
