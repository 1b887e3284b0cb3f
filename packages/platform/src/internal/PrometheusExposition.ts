/**
 * The Prometheus text exposition of every Effect metric of the process:
 * @effect/opentelemetry's producer (Effect's registry to OpenTelemetry metric
 * data) and @opentelemetry/exporter-prometheus's serializer. Metrics.route
 * imports this module at the first scrape, so a process nobody scrapes never
 * loads the OpenTelemetry metrics SDK.
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as Resource from "@effect/opentelemetry/Resource"
import { PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { Effect } from "effect"

/**
 * What a scrape answers, for `serviceName`: `target_info` carries the name;
 * series carry no scope label (one scope, Effect's registry, would add nothing
 * but bytes).
 */
export const make = (serviceName: string): Effect.Effect<Effect.Effect<string>> =>
  Effect.map(OtelMetrics.makeProducer.pipe(Effect.provide(Resource.layer({ serviceName }))), (producer) => {
    const serializer = new PrometheusSerializer(undefined, false, undefined, false, true)
    return Effect.map(
      Effect.promise(() => producer.collect()),
      ({ resourceMetrics }) => serializer.serialize(resourceMetrics)
    )
  })
