/**
 * Tracing: OpenTelemetry spans of every Effect span (`Effect.withSpan`, `Effect.fn`,
 * the gRPC bridge, Effect RPC, HTTP, SQL), sampled by trace id and exported over
 * OTLP/HTTP. When no endpoint is configured there is no SDK and no exporter: spans
 * stay in-process (Effect's own tracer), where logs still read their ids.
 *
 * Trace context crosses process boundaries as W3C `traceparent`/`tracestate`:
 * HTTP and Effect RPC carry it by themselves; {@link inject} and {@link extract}
 * carry it through any string-keyed carrier (gRPC metadata, message headers).
 */
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import * as OtelApi from "@opentelemetry/api"
import { W3CTraceContextPropagator } from "@opentelemetry/core"
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Config, Duration, Effect, FiberRef, identity, Layer, Option, type Tracer } from "effect"

export interface TracingConfig {
  /** OTLP/HTTP base URL (`http://collector:4318`); none = tracing off, no exporter. */
  readonly endpoint: Option.Option<string>
  /** Share of new traces recorded, 0 to 1; a caller's decision is always followed. */
  readonly sampleRatio: number
}

/** `tracing.*` (`TRACING_ENDPOINT`, `TRACING_SAMPLE_RATIO`). */
export const config: Config.Config<TracingConfig> = Config.all({
  endpoint: Config.option(
    Config.string("endpoint").pipe(
      Config.validate({ message: "Expected an http(s) URL such as http://127.0.0.1:4318", validation: isHttpUrl })
    )
  ),
  sampleRatio: Config.number("sampleRatio").pipe(
    Config.validate({ message: "Expected a number from 0 to 1", validation: (n) => n >= 0 && n <= 1 }),
    Config.withDefault(1)
  )
}).pipe(Config.nested("tracing"))

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

/**
 * The longest a stop waits to flush pending spans (a graceful stop's last step,
 * after everything traced has closed). A collector that is down or hangs costs a
 * stop this much, never more: deployments' grace periods count it.
 */
export const SHUTDOWN_TIMEOUT: Duration.Duration = Duration.seconds(5)

export interface Options {
  /** `service.name` of every span (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES still apply). */
  readonly serviceName: string
  readonly sampleRatio: number
  /** Where finished spans go. */
  readonly spanProcessor: SpanProcessor
}

/** The SDK half, loaded when tracing is on (the first time a layer that traces is built). */
const sdk = Effect.promise(() => import("./internal/TelemetrySdk.js"))

/**
 * Installs an OpenTelemetry tracer for everything built under this layer. Fresh on
 * every use: several services in one process (the dev stack, tests) each get their
 * own, named after themselves. Closing the layer flushes pending spans.
 */
export const layerSdk = (options: Options): Layer.Layer<never> =>
  Layer.unwrapEffect(Effect.map(sdk, (sdk) => sdk.layerSdk(options)))

/**
 * Tracing of one service as configured: nothing at all when no endpoint is set
 * (nor is the OpenTelemetry SDK loaded), else sampled spans batched to
 * `${endpoint}/v1/traces` (OTLP/HTTP, JSON); an export gives up within
 * {@link SHUTDOWN_TIMEOUT}.
 */
export const layer = (serviceName: string, tracing: TracingConfig): Layer.Layer<never> =>
  Option.match(tracing.endpoint, {
    // Off means off: no span is made at all (see `span`), not spans nobody exports.
    onNone: () => Layer.setTracerEnabled(false),
    onSome: (endpoint) =>
      Layer.unwrapEffect(Effect.map(sdk, (sdk) => sdk.layerOtlp(serviceName, endpoint, tracing.sampleRatio)))
  })

/**
 * `span(name)` wraps an effect in a span named `name` while tracing is on; with
 * tracing off (`Layer.setTracerEnabled(false)`, which {@link layer} sets when no
 * endpoint is configured) it returns the effect unchanged: no span object and no
 * stack capture, which Effect's spans cost even with the tracer disabled (several
 * µs each). Read it once where a service is built, and use it where a per-call
 * path would use `Effect.fn(name)`: `Effect.fnUntraced(body, span(name))`.
 */
export const span: Effect.Effect<
  (name: string, options?: Tracer.SpanOptions) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
> = Effect.map(FiberRef.get(FiberRef.currentTracerEnabled), (enabled) =>
  enabled
    ? (name, options) => (self) =>
      Effect.withSpan(self, name, { ...options, captureStackTrace: false }) as Effect.Effect<any, any, any>
    : () => identity)

// ---------------------------------------------------------------------------------
// Trace context in string-keyed carriers

/** A carrier of trace context: gRPC metadata, message headers, anything string-keyed. */
export type Carrier = Readonly<Record<string, string | undefined>>

const propagator = new W3CTraceContextPropagator()
const getter: OtelApi.TextMapGetter<Carrier> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key]
}

/**
 * The current span's context as W3C headers (`traceparent`, and `tracestate` when
 * there is one), to send along with a message; empty outside any span.
 */
export const inject: Effect.Effect<Record<string, string>> = Effect.map(
  Effect.option(OtelTracer.currentOtelSpan),
  (span) => {
    const carrier: Record<string, string> = {}
    if (Option.isSome(span)) {
      propagator.inject(OtelApi.trace.setSpan(OtelApi.ROOT_CONTEXT, span.value), carrier, OtelApi.defaultTextMapSetter)
    }
    return carrier
  }
)

/**
 * The remote parent described by a carrier's W3C headers, sampled flag and trace
 * state included; none when they are absent or malformed (a bad header starts a
 * new trace rather than failing the work).
 */
export const extract = (carrier: Carrier): Option.Option<Tracer.ExternalSpan> => {
  if (carrier.traceparent === undefined) return Option.none()
  const context = OtelApi.trace.getSpanContext(propagator.extract(OtelApi.ROOT_CONTEXT, carrier, getter))
  if (context === undefined || !OtelApi.isSpanContextValid(context)) return Option.none()
  return Option.some(OtelTracer.makeExternalSpan({
    traceId: context.traceId,
    spanId: context.spanId,
    traceFlags: context.traceFlags,
    traceState: context.traceState
  }))
}

/** Runs `self` as a continuation of the trace in `carrier` (its spans become children of the sender's). */
export const continueFrom = (carrier: Carrier) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Option.match(extract(carrier), {
    onNone: () => self,
    onSome: (parent) => Effect.withParentSpan(self, parent) as Effect.Effect<A, E, R>
  })
