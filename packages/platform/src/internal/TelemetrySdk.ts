/**
 * The OpenTelemetry SDK half of Telemetry: a tracer provider, the sampler and the
 * OTLP/HTTP exporter. Telemetry imports this module only when tracing is on, so a
 * service without a trace endpoint never loads the SDK, the exporter or what they
 * bring (semantic conventions, resources, the OTLP transformer).
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as Resource from "@effect/opentelemetry/Resource"
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import * as OtelApi from "@opentelemetry/api"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type SpanExporter,
  TraceIdRatioBasedSampler
} from "@opentelemetry/sdk-trace-base"
import { Context, Duration, Effect, Layer, Option, Tracer } from "effect"
import { type Options, SHUTDOWN_TIMEOUT } from "../Telemetry.js"

/**
 * The OpenTelemetry tracer as Effect's, with two changes:
 *
 * - @effect/opentelemetry gives a remote parent that carries no OpenTelemetry
 *   trace flags (one parsed by Effect's HTTP server or Effect RPC) the SAMPLED
 *   flag, so a caller's "not sampled" would be overruled and every backend would
 *   record orphan spans. The Effect span's own `sampled` is the caller's
 *   decision: pass it on. Fixed upstream for Effect 4 (Effect-TS/effect-smol#2451):
 *   drop this part when migrating.
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

/** See Telemetry.layerSdk. */
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
const otlpExporter = (endpoint: string): SpanExporter =>
  new OTLPTraceExporter({
    url: `${endpoint.replace(/\/+$/, "")}/v1/traces`,
    timeoutMillis: Duration.toMillis(SHUTDOWN_TIMEOUT)
  })

/** Sampled spans of `serviceName`, batched to the OTLP endpoint. */
export const layerOtlp = (serviceName: string, endpoint: string, sampleRatio: number): Layer.Layer<never> =>
  Layer.unwrapEffect(Effect.sync(() =>
    layerSdk({
      serviceName,
      sampleRatio,
      spanProcessor: new BatchSpanProcessor(otlpExporter(endpoint), { maxQueueSize: 8192, maxExportBatchSize: 1024 })
    })
  ))
