/**
 * Publishes rating events to the Kafka topic the rating service consumes. Each
 * message is keyed by its record, so one record's events land on one partition
 * and stay in order; the value is the event's JSON in the original shape. The
 * producer is idempotent, so a retried send is not stored twice.
 */
import type { RatingEvent } from "@movieapp/contracts/Rating"
import * as RatingEventJson from "@movieapp/contracts/RatingEventJson"
import * as Kafka from "@movieapp/platform/Kafka"
import type * as KafkaSettings from "@movieapp/platform/KafkaSettings"
import * as Telemetry from "@movieapp/platform/Telemetry"
import type * as Tls from "@movieapp/platform/Tls"
import { Duration, Effect, Layer } from "effect"
import { PublishError, RatingEventPublisher } from "../ports/RatingEventPublisher.js"

export interface Options {
  readonly kafka: KafkaSettings.KafkaConfig
  /** How long one batch may take before it counts as failed; 30 seconds by default. */
  readonly timeout?: Duration.DurationInput
}

/** The partitioning key: events of one record share it. */
export const keyOf = (event: RatingEvent) => `${event.recordType}/${event.recordId}`

const toPublishError = (options: Options) => (error: { readonly message: string }) =>
  new PublishError({ message: `cannot publish to Kafka topic ${options.kafka.topic}: ${error.message}`, cause: error })

export const make = (options: Options) =>
  Effect.gen(function*() {
    const kafka = yield* Kafka.make(options.kafka)
    // Fail fast with the reason when no broker answers, instead of the idempotent producer's endless retries.
    const producer = yield* Kafka.producer(kafka, options.kafka).pipe(Effect.mapError(toPublishError(options)))
    const timeout = options.timeout ?? Duration.seconds(30)
    return RatingEventPublisher.of({
      publish: (events) =>
        Telemetry.inject.pipe(
          // The publish span's context travels in every message's headers, so the consumer continues this trace.
          Effect.flatMap((headers) =>
            Effect.tryPromise({
              try: () =>
                producer.send({
                  topic: options.kafka.topic,
                  acks: -1,
                  messages: events.map((event) => ({
                    key: keyOf(event),
                    value: RatingEventJson.stringify(event),
                    headers
                  }))
                }),
              catch: Kafka.unavailable(options.kafka)
            })
          ),
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new PublishError({
                message: `Kafka (brokers ${options.kafka.brokers.join(",")}) did not acknowledge a batch within ${
                  Duration.format(timeout)
                }`
              })
          }),
          Effect.catchTag("ServiceUnavailable", (error) => Effect.fail(toPublishError(options)(error))),
          Effect.asVoid,
          Effect.withSpan("RatingEventPublisher.publish", {
            attributes: { "events.count": events.length, "messaging.destination.name": options.kafka.topic }
          })
        )
    })
  })

/** One producer for the layer's lifetime; building it fails when no broker can be reached. */
export const layer = (options: Options): Layer.Layer<RatingEventPublisher, PublishError | Tls.TlsError> =>
  Layer.scoped(RatingEventPublisher, make(options))
