/**
 * A rating event's trace across the Kafka hop, on the real broker: the
 * ingestor's run and publish, the trace context in the message headers, the
 * consumer's batch, the ingester and the repository, one parent/child chain.
 */
import { assert, describe, it } from "@effect/vitest"
import * as RatingEventSourceKafka from "@movieapp/rating/adapters/RatingEventSourceKafka"
import * as RatingRepositoryMemory from "@movieapp/rating/adapters/RatingRepositoryMemory"
import * as Ingester from "@movieapp/rating/Ingester"
import * as RatingEventPublisherKafka from "@movieapp/ratingingestor/adapters/RatingEventPublisherKafka"
import * as Ingest from "@movieapp/ratingingestor/Ingest"
import * as TestKafka from "@movieapp/testkit/Kafka"
import * as Logs from "@movieapp/testkit/Logs"
import * as Poll from "@movieapp/testkit/Poll"
import * as Tracing from "@movieapp/testkit/Tracing"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Duration, Effect, Layer } from "effect"

const kafkaUp = await TestKafka.available()

describe.skipIf(!kafkaUp)("tracing across Kafka (real broker)", () => {
  it.live(
    "ingestor run -> publish -> message headers -> consumer batch -> ingester -> repository, one trace",
    () =>
      Effect.gen(function*() {
        const recorder = Tracing.make()
        const topic = TestKafka.unique("traced")
        const group = TestKafka.unique("rating")
        yield* TestKafka.createTopic(topic, 1)
        yield* Layer.build(
          Ingester.layer.pipe(
            Layer.provide(RatingEventSourceKafka.layer({
              ...RatingEventSourceKafka.defaults(TestKafka.config(topic)),
              group,
              drainTimeout: Duration.seconds(5),
              sessionTimeout: Duration.seconds(6)
            })),
            Layer.provide(RatingRepositoryMemory.layer),
            Layer.provide(recorder.tracing("rating"))
          )
        )
        yield* Ingest.runGenerated({ count: 3, seed: 5 }).pipe(
          Effect.provide(RatingEventPublisherKafka.layer({ kafka: TestKafka.config(topic) })),
          Effect.provide(recorder.tracing("ratingingestor"))
        )
        const run = yield* Poll.until(
          Effect.sync(() => recorder.spans().find((span) => span.name === "Ingest.runGenerated")),
          (span) => span !== undefined,
          { what: "the ingestor's run span" }
        )
        const spans = yield* recorder.trace(
          run!.spanContext().traceId,
          // The batch span ends last, after the offset is committed.
          (s) => s.some((span) => span.name === "RatingEventSourceKafka.batch"),
          "30 seconds"
        )
        const child = (parent: ReadableSpan, name: string, service: string) => {
          const span = Tracing.childOf(spans, parent.spanContext(), name)
          assert.strictEqual(Tracing.serviceOf(span), service, name)
          return span
        }
        const publish = child(run!, "RatingEventPublisher.publish", "ratingingestor")
        const batch = child(publish, "RatingEventSourceKafka.batch", "rating")
        assert.strictEqual(batch.attributes["messaging.destination.name"], topic)
        child(child(batch, "Ingester.applyBatch", "rating"), "RatingRepository.applyStreamBatch", "rating")
        // What the consumer and the ingestor log (joining, publishing, leaving) is not this test's subject: kept, not printed.
      }).pipe(Effect.scoped, Effect.provide(Logs.make().layer)),
    { timeout: 90_000 }
  )
})
