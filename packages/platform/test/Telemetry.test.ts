/**
 * Telemetry on its own: trace context through a string-keyed carrier (what gRPC
 * metadata and message headers use), sampling, configuration, and a real OTLP/HTTP
 * export to a receiver listening on loopback.
 */
import { assert, describe, it } from "@effect/vitest"
import * as OtlpReceiver from "@movieapp/testkit/OtlpReceiver"
import * as Poll from "@movieapp/testkit/Poll"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { ConfigProvider, Duration, Effect, Option, Tracer } from "effect"
import { createServer } from "node:net"
import * as Telemetry from "../src/Telemetry.js"

/** A tracer for `serviceName` recording into a fresh in-memory exporter, kept after the layer closes. */
const recording = (serviceName: string, sampleRatio = 1) => {
  const exporter = new InMemorySpanExporter()
  // Closing the layer shuts its exporter down, which would clear what it recorded.
  exporter.shutdown = () => Promise.resolve()
  return {
    spans: (): ReadonlyArray<ReadableSpan> => exporter.getFinishedSpans(),
    layer: Telemetry.layerSdk({ serviceName, sampleRatio, spanProcessor: new SimpleSpanProcessor(exporter) })
  }
}

const named = (spans: ReadonlyArray<ReadableSpan>, name: string) => {
  const found = spans.filter((span) => span.name === name)
  assert.strictEqual(found.length, 1, `one span named ${name} in [${spans.map((s) => s.name).join(", ")}]`)
  return found[0]!
}

const traceparent = (traceId: string, spanId: string, sampled: boolean) =>
  `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
const SPAN = "00f067aa0ba902b7"

describe("Telemetry carrier", () => {
  it.effect("outside any span there is nothing to inject", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* Telemetry.inject, {})
    }))

  it.effect("inside a span, the carrier names that span and its sampling decision", () =>
    Effect.gen(function*() {
      const { layer } = recording("producer")
      const [span, carrier] = yield* Effect.all([Effect.currentSpan, Telemetry.inject]).pipe(
        Effect.withSpan("publish"),
        Effect.provide(layer)
      )
      assert.deepStrictEqual(carrier, { traceparent: traceparent(span.traceId, span.spanId, true) })
    }))

  it.effect("a consumer continues the producer's trace from the carrier alone", () =>
    Effect.gen(function*() {
      const producer = recording("producer")
      const consumer = recording("consumer")
      const carrier = yield* Telemetry.inject.pipe(Effect.withSpan("publish"), Effect.provide(producer.layer))
      // Only strings cross the wire.
      const received: Telemetry.Carrier = JSON.parse(JSON.stringify(carrier))
      yield* Effect.void.pipe(
        Effect.withSpan("consume"),
        Telemetry.continueFrom(received),
        Effect.provide(consumer.layer)
      )

      const publish = named(producer.spans(), "publish")
      const consume = named(consumer.spans(), "consume")
      assert.strictEqual(consume.spanContext().traceId, publish.spanContext().traceId)
      assert.strictEqual(consume.parentSpanContext?.spanId, publish.spanContext().spanId)
      assert.strictEqual(consume.resource.attributes["service.name"], "consumer")
      assert.strictEqual(publish.resource.attributes["service.name"], "producer")
    }))

  it.effect("trace state passes through a hop unchanged", () =>
    Effect.gen(function*() {
      const { layer } = recording("relay")
      const carrier = yield* Telemetry.inject.pipe(
        Effect.withSpan("relay"),
        Telemetry.continueFrom({ traceparent: traceparent(TRACE, SPAN, true), tracestate: "vendor=abc,other=1" }),
        Effect.provide(layer)
      )
      assert.strictEqual(carrier.tracestate, "vendor=abc,other=1")
      assert.match(carrier.traceparent!, new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`))
    }))

  it.effect("a sender's decision not to sample is kept: nothing recorded, and passed on", () =>
    Effect.gen(function*() {
      const { layer, spans } = recording("consumer")
      const carrier = yield* Telemetry.inject.pipe(
        Effect.withSpan("consume"),
        Telemetry.continueFrom({ traceparent: traceparent(TRACE, SPAN, false) }),
        Effect.provide(layer)
      )
      assert.deepStrictEqual(spans(), [])
      assert.match(carrier.traceparent!, new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`))
    }))

  it.effect("a malformed or absent carrier starts a new trace instead of failing", () =>
    Effect.gen(function*() {
      for (
        const bad of [
          {},
          { traceparent: "garbage" },
          { traceparent: `00-${TRACE}-${SPAN}` },
          { traceparent: traceparent("0".repeat(32), SPAN, true) },
          { traceparent: traceparent(TRACE, "0".repeat(16), true) },
          { traceparent: traceparent(TRACE.toUpperCase().replace(/[0-9]/g, "G"), SPAN, true) }
        ]
      ) {
        assert.isTrue(Option.isNone(Telemetry.extract(bad)), JSON.stringify(bad))
        const { layer, spans } = recording("consumer")
        yield* Effect.void.pipe(Effect.withSpan("consume"), Telemetry.continueFrom(bad), Effect.provide(layer))
        const consume = named(spans(), "consume")
        assert.isUndefined(consume.parentSpanContext, JSON.stringify(bad))
        assert.notStrictEqual(consume.spanContext().traceId, TRACE)
      }
    }))
})

describe("Telemetry sampling", () => {
  it.effect("the ratio applies to new traces: 0 records none, 1 records all", () =>
    Effect.gen(function*() {
      const none = recording("svc", 0)
      const all = recording("svc", 1)
      const twenty = Effect.void.pipe(Effect.withSpan("root"), Effect.repeatN(19))
      yield* twenty.pipe(Effect.provide(none.layer))
      yield* twenty.pipe(Effect.provide(all.layer))
      assert.strictEqual(none.spans().length, 0)
      assert.strictEqual(all.spans().length, 20)
    }))

  it.effect("a sampled caller is recorded even at ratio 0: the trace stays whole", () =>
    Effect.gen(function*() {
      const { layer, spans } = recording("svc", 0)
      yield* Effect.void.pipe(
        Effect.withSpan("child"),
        Effect.withSpan("handle"),
        Telemetry.continueFrom({ traceparent: traceparent(TRACE, SPAN, true) }),
        Effect.provide(layer)
      )
      assert.deepStrictEqual(spans().map((s) => s.name).sort(), ["child", "handle"])
    }))

  it.effect("remote parents parsed by Effect's HTTP server and RPC keep their sampling decision", () =>
    Effect.gen(function*() {
      // What @effect/platform and @effect/rpc hand the tracer: an external span with only `sampled`.
      const remote = (sampled: boolean) => Tracer.externalSpan({ traceId: TRACE, spanId: SPAN, sampled })
      const { layer, spans } = recording("svc", 1)
      yield* Effect.zipRight(
        Effect.withSpan(Effect.void, "unsampled", { parent: remote(false) }),
        Effect.withSpan(Effect.void, "sampled", { parent: remote(true) })
      ).pipe(Effect.provide(layer))
      assert.deepStrictEqual(spans().map((s) => s.name), ["sampled"])
      assert.strictEqual(spans()[0]!.parentSpanContext?.spanId, SPAN)
    }))
})

describe("Telemetry configuration", () => {
  /** Reads the config the way services do (the environment, constant-cased), with `env` as the environment. */
  const read = (env: Record<string, string>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const saved = { ...process.env }
        delete process.env.TRACING_ENDPOINT
        delete process.env.TRACING_SAMPLE_RATIO
        Object.assign(process.env, env)
        return saved
      }),
      () =>
        Telemetry.config.pipe(Effect.withConfigProvider(ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase))),
      (saved) =>
        Effect.sync(() => {
          process.env = saved
        })
    )

  it.effect("tracing is off unless an endpoint is set; every new trace is sampled by default", () =>
    Effect.gen(function*() {
      const config = yield* read({})
      assert.isTrue(Option.isNone(config.endpoint))
      assert.strictEqual(config.sampleRatio, 1)
      const on = yield* read({ TRACING_ENDPOINT: "http://collector:4318", TRACING_SAMPLE_RATIO: "0.1" })
      assert.deepStrictEqual(on, { endpoint: Option.some("http://collector:4318"), sampleRatio: 0.1 })
    }))

  it.effect("invalid values fail naming the variable", () =>
    Effect.gen(function*() {
      // Effect names the key as read (TRACING.SAMPLE_RATIO) or, for a failed validation, as declared (tracing.sampleRatio).
      const normalized = (text: string) => text.replace(/[._]/g, "").toLowerCase()
      for (
        const [env, key, reason] of [
          [{ TRACING_SAMPLE_RATIO: "1.5" }, "TRACING_SAMPLE_RATIO", "from 0 to 1"],
          [{ TRACING_SAMPLE_RATIO: "x" }, "TRACING_SAMPLE_RATIO", "number"],
          [{ TRACING_ENDPOINT: "collector:4318" }, "TRACING_ENDPOINT", "URL"]
        ] as const
      ) {
        const error = String(yield* Effect.flip(read(env)))
        assert.include(normalized(error), normalized(key), error)
        assert.include(error, reason)
      }
    }))

  it.effect("off means no tracer at all: Effect's own stays in place", () =>
    Effect.gen(function*() {
      const before = yield* Effect.tracer
      const during = yield* Effect.tracer.pipe(
        Effect.provide(Telemetry.layer("svc", { endpoint: Option.none(), sampleRatio: 1 }))
      )
      assert.strictEqual(during, before)
    }))
})

describe("Telemetry export", () => {
  it.live("with an endpoint, spans reach an OTLP/HTTP receiver at /v1/traces, flushed when the layer closes", () =>
    Effect.gen(function*() {
      const otlp = yield* OtlpReceiver.make()
      yield* Effect.void.pipe(
        Effect.withSpan("exported.child"),
        Effect.withSpan("exported.root", { attributes: { "movie.id": "heat" } }),
        Effect.provide(Telemetry.layer("exporting-service", { endpoint: Option.some(`${otlp.url}/`), sampleRatio: 1 }))
      )
      assert.isAbove(otlp.requests().length, 0)
      const [request] = otlp.requests()
      assert.strictEqual(request!.path, "/v1/traces")
      assert.include(request!.contentType, "application/json")
      const body = JSON.parse(request!.body)
      const resourceSpans = body.resourceSpans[0]
      const serviceName = resourceSpans.resource.attributes.find((a: { key: string }) => a.key === "service.name")
      assert.strictEqual(serviceName.value.stringValue, "exporting-service")
      const spans = resourceSpans.scopeSpans.flatMap((
        scope: { spans: Array<{ name: string; parentSpanId?: string; spanId: string }> }
      ) => scope.spans)
      const root = spans.find((s: { name: string }) => s.name === "exported.root")
      const child = spans.find((s: { name: string }) => s.name === "exported.child")
      assert.strictEqual(child.parentSpanId, root.spanId)
    }).pipe(Effect.scoped))

  /** Spans of 20 traced steps, their results, and how long closing the layer took (ms). */
  const tracedWork = (endpoint: string) =>
    Effect.gen(function*() {
      let closing = 0
      const results = yield* Effect.scoped(Effect.gen(function*() {
        // Runs first when the scope closes, before the tracer provider flushes.
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            closing = Date.now()
          })
        )
        return yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) =>
          Effect.succeed(i).pipe(Effect.withSpan("work")))
      })).pipe(
        Effect.provide(Telemetry.layer("exporting-service", { endpoint: Option.some(endpoint), sampleRatio: 1 }))
      )
      return { results, closedIn: Date.now() - closing }
    })

  const stopBound = Duration.toMillis(Telemetry.SHUTDOWN_TIMEOUT) + 2_000

  it.live(
    "a collector that cannot be reached: the traced work is unaffected, and the stop waits for it at most SHUTDOWN_TIMEOUT",
    () =>
      Effect.gen(function*() {
        const refused = yield* Effect.async<number>((resume) => {
          const server = createServer().listen(0, "127.0.0.1", () => {
            const { port } = server.address() as { port: number }
            server.close(() => resume(Effect.succeed(port)))
          })
        })
        const { results, closedIn } = yield* tracedWork(`http://127.0.0.1:${refused}`)
        assert.deepStrictEqual(results, Array.from({ length: 20 }, (_, i) => i))
        // Deployments' grace periods count this wait (deploy/test/Programs.ts).
        assert.isBelow(closedIn, stopBound)
      }),
    30_000
  )

  it.live(
    "a collector that takes the export and never answers: the export is abandoned when the stop's wait ends, not later",
    () =>
      Effect.gen(function*() {
        const hanging = yield* OtlpReceiver.make({ answer: false })
        const started = Date.now()
        const { results } = yield* tracedWork(hanging.url)
        assert.strictEqual(results.length, 20)
        assert.isAbove(hanging.requests().length, 0, "the flush reached the collector")
        // Were the export left to the exporter's default (10 s), it would keep a finished program alive after its stop.
        yield* Poll.until(Effect.sync(hanging.abandoned), (n) => n === hanging.requests().length, {
          what: "every export to be abandoned",
          timeout: Duration.millis(stopBound - (Date.now() - started))
        })
      }).pipe(Effect.scoped),
    30_000
  )
})
