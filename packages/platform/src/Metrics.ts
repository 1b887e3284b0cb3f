/**
 * Metrics: instruments are Effect `Metric`s, anywhere in the code; each service
 * serves every metric of its process at `GET /metrics` in the Prometheus text
 * format. The conversion is @effect/opentelemetry's metric producer (Effect
 * registry to OpenTelemetry metric data) and the serialization is
 * @opentelemetry/exporter-prometheus's, so a new Effect metric appears there
 * without any registration. Values that are state rather than events (requests
 * waiting for a pool's connections) are read at each scrape: see {@link observeAtScrape}.
 */
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Effect, Layer, Metric, MetricBoundaries, MetricLabel, type Scope } from "effect"

/** Prometheus text exposition format 0.0.4. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

export const PATH = "/metrics"

/** Process-wide, as Effect's metric registry is: any scrape reads every observed value. */
const scrapeObservers = new Set<{ readonly observe: Effect.Effect<void> }>()

/**
 * Runs `observe` at the start of every scrape while the scope is open. For values
 * that are a state to read when asked, not events to count as they happen (a
 * pool's pending requests): OpenTelemetry's asynchronous instruments, which
 * Effect's metrics lack. `observe` sets Effect gauges; it must be quick.
 */
export const observeAtScrape = (observe: Effect.Effect<void>): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const observer = { observe }
      scrapeObservers.add(observer)
      return observer
    }),
    (observer) => Effect.sync(() => scrapeObservers.delete(observer))
  )

/**
 * `GET /metrics` on a service's HTTP router. The exposition (see
 * internal/PrometheusExposition) is loaded at the first scrape.
 */
export const route = (serviceName: string): Layer.Layer<never, never, HttpLayerRouter.HttpRouter> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.cached(Effect.flatMap(
        Effect.promise(() => import("./internal/PrometheusExposition.js")),
        (exposition) => exposition.make(serviceName)
      )),
      (exposition) =>
        HttpLayerRouter.add(
          "GET",
          PATH,
          Effect.forEach(scrapeObservers, ({ observe }) => observe, { discard: true }).pipe(
            Effect.zipRight(Effect.flatten(exposition)),
            Effect.map((text) => HttpServerResponse.text(text, { contentType: CONTENT_TYPE }))
          )
        )
    )
  )

// ---------------------------------------------------------------------------------
// Server calls, the same for every transport (gRPC, Effect RPC)

/** Seconds: from half a millisecond (a cached read) to ten seconds (a deadline). */
export const latencyBoundaries = MetricBoundaries.fromIterable([
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10
])

/** `rpc_server_calls_total{rpc_system, rpc_service, rpc_method, status}`. */
export const serverCalls = Metric.counter("rpc_server_calls_total", {
  description: "Calls served, by method and outcome (a gRPC status code name, or an Effect RPC error tag)",
  incremental: true
})

/** `rpc_server_call_duration_seconds{rpc_system, rpc_service, rpc_method}`. */
export const serverCallDuration = Metric.histogram(
  "rpc_server_call_duration_seconds",
  latencyBoundaries,
  "Time from receiving a call to its outcome, by method"
)

/** Records finished calls of one method; see {@link serverCallRecorder}. */
export type CallRecorder = (status: string, seconds: number) => void

/**
 * A recorder for one method's calls, made once when the method is registered so
 * the per-call path only updates two metrics: label sets are built once and kept
 * (Effect caches a metric's series by label-array identity).
 */
export const serverCallRecorder = (system: string, service: string, method: string): CallRecorder => {
  const base = [
    MetricLabel.make("rpc_system", system),
    MetricLabel.make("rpc_service", service),
    MetricLabel.make("rpc_method", method)
  ]
  const byStatus = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
  return (status, seconds) => {
    let labels = byStatus.get(status)
    if (labels === undefined) {
      labels = [...base, MetricLabel.make("status", status)]
      byStatus.set(status, labels)
    }
    serverCalls.unsafeUpdate(1, labels)
    serverCallDuration.unsafeUpdate(seconds, base)
  }
}
