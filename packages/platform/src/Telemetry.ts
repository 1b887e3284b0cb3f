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
import { NodeSdk, Resource, Tracer as OtelTracer } from "@effect/opentelemetry"
import * as OtelApi from "@opentelemetry/api"
import { W3CTraceContextPropagator } from "@opentelemetry/core"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler
} from "@opentelemetry/sdk-trace-base"
import { Config, Context, Duration, Effect, FiberRef, identity, Layer, Option, Tracer } from "effect"

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
 * The OpenTelemetry tracer as Effect's, with two changes:
 *
 * - @effect/opentelemetry gives a remote parent that carries no OpenTelemetry
 *   trace flags (one parsed by Effect's HTTP server or Effect RPC) the SAMPLED
 *   flag, so a caller's "not sampled" would be overruled and every backend would
 *   record orphan spans. The Effect span's own `sampled` is the caller's
 *   decision: pass it on.
 * - It enters the OpenTelemetry context around every step of every fiber, for
 *   OpenTelemetry instrumentations of other libraries. We install none and
 *   register no context manager (so that context is a no-op), and the cost was
 *   most of tracing's per-call cost: steps run as they are.
 */
const effectTracer = (tracer: Tracer.Tracer): Tracer.Tracer =>
  Tracer.make({
    span(name, parent, context, links, startTime, kind, options) {
      const remote = Option.getOrUndefined(parent)
      const fixed = remote !== undefined && remote._tag === "ExternalSpan" &&
          !Context.getOption(remote.context, OtelTracer.OtelTraceFlags).pipe(Option.isSome)
        ? Option.some<Tracer.AnySpan>({
          ...remote,
          context: Context.add(
            remote.context,
            OtelTracer.OtelTraceFlags,
            remote.sampled ? OtelApi.TraceFlags.SAMPLED : OtelApi.TraceFlags.NONE
          )
        })
        : parent
      return tracer.span(name, fixed, context, links, startTime, kind, options)
    },
    context: (execution) => execution()
  })

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

/**
 * Installs an OpenTelemetry tracer for everything built under this layer. Fresh on
 * every use: several services in one process (the dev stack, tests) each get their
 * own, named after themselves. Closing the layer flushes pending spans.
 */
export const layerSdk = (options: Options): Layer.Layer<never> => {
  const sampler = new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampleRatio) })
  return Layer.unwrapEffect(Effect.map(OtelTracer.make, (tracer) => Layer.setTracer(effectTracer(tracer)))).pipe(
    Layer.provide(OtelTracer.layerTracer),
    Layer.provide(NodeSdk.layerTracerProvider(options.spanProcessor, { sampler, shutdownTimeout: SHUTDOWN_TIMEOUT })),
    Layer.provide(Resource.layerFromEnv(Resource.configToAttributes({ serviceName: options.serviceName }))),
    Layer.fresh
  )
}

/**
 * Spans exported in batches to `${endpoint}/v1/traces` (OTLP/HTTP, JSON). An
 * export, retries included, gives up within {@link SHUTDOWN_TIMEOUT}: the
 * exporter's own default (10 s) would keep a finished program (the ingestor) alive
 * past the stop's wait while an unreachable collector is retried.
 */
export const otlpExporter = (endpoint: string): SpanExporter =>
  new OTLPTraceExporter({
    url: `${endpoint.replace(/\/+$/, "")}/v1/traces`,
    timeoutMillis: Duration.toMillis(SHUTDOWN_TIMEOUT)
  })

/**
 * Tracing of one service as configured: nothing at all when no endpoint is set,
 * else sampled spans batched to the OTLP endpoint.
 */
export const layer = (serviceName: string, tracing: TracingConfig): Layer.Layer<never> =>
  Option.match(tracing.endpoint, {
    // Off means off: no span is made at all (see `span`), not spans nobody exports.
    onNone: () => Layer.setTracerEnabled(false),
    onSome: (endpoint) =>
      Layer.unwrapEffect(Effect.sync(() =>
        layerSdk({
          serviceName,
          sampleRatio: tracing.sampleRatio,
          spanProcessor: new BatchSpanProcessor(otlpExporter(endpoint), {
            maxQueueSize: 8192,
            maxExportBatchSize: 1024
          })
        })
      ))
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
