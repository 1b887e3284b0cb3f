/**
 * Rating events from a Kafka topic, consumed by the group `kafka.group`.
 *
 * Exactly once, with at-least-once delivery underneath: every partition is a
 * stream whose offsets are the positions; a batch is handed over with them, the
 * repository records the partition's next offset in the same transaction as the
 * batch (skipping what it applied before), and only then is the offset committed
 * to Kafka. A crash anywhere replays from the last committed offset, and the
 * replay is recognised.
 *
 * Messages that are not valid rating events go to the dead-letter topic, unchanged,
 * with the reason and their origin in headers, before the batch is handed over;
 * they still move the partition's position, so they never block ingestion. So do
 * valid events storage refuses: the batch's handler sets them aside here.
 */
import * as RatingEventJson from "@movieapp/contracts/RatingEventJson"
import * as Kafka from "@movieapp/platform/Kafka"
import * as KafkaSettings from "@movieapp/platform/KafkaSettings"
import * as Readiness from "@movieapp/platform/Readiness"
import * as Telemetry from "@movieapp/platform/Telemetry"
import type * as Tls from "@movieapp/platform/Tls"
import { Config, Duration, Effect, Either, Fiber, FiberSet, Layer, Metric, Option, Schedule, type Tracer } from "effect"
import type { Batch, IHeaders, KafkaMessage, Producer } from "kafkajs"
import { type PositionedEvent, RatingEventSource } from "../ports/RatingEventSource.js"

export interface ConsumerConfig {
  readonly kafka: KafkaSettings.KafkaConfig
  /** The consumer group; its members share the topic's partitions. */
  readonly group: string
  readonly deadLetterTopic: string
  /** Partitions processed at once by one instance (each still in order). */
  readonly concurrency: number
  /** Upper bound of one fetch per partition, so of one batch. */
  readonly maxBytesPerPartition: number
  /** How long a stop waits for the batch in hand before abandoning it (it is redelivered). */
  readonly drainTimeout: Duration.Duration
  /** How long the group waits for a silent member (a crashed instance) before giving its partitions to others. */
  readonly sessionTimeout: Duration.Duration
}

const DEFAULTS = {
  group: "rating",
  concurrency: 3,
  maxBytesPerPartition: 1024 * 1024,
  drainTimeout: Duration.seconds(10),
  sessionTimeout: Duration.seconds(30)
} as const

/** Every consumer setting but the connection at its default; the dead-letter topic is `<topic>.dead-letter`. */
export const defaults = (kafka: KafkaSettings.KafkaConfig): ConsumerConfig => ({
  kafka,
  deadLetterTopic: `${kafka.topic}.dead-letter`,
  ...DEFAULTS
})

const positive = (name: string) =>
  Config.integer(name).pipe(Config.validate({ message: "Expected a positive integer", validation: (n) => n >= 1 }))

/**
 * `kafka.*` as in platform Kafka, plus `KAFKA_GROUP` (default `rating`),
 * `KAFKA_DEAD_LETTER_TOPIC` (default `<topic>.dead-letter`), `KAFKA_CONCURRENCY`
 * (default 3), `KAFKA_MAX_BYTES_PER_PARTITION` (default 1 MiB), `KAFKA_DRAIN_TIMEOUT`
 * (default 10 seconds), `KAFKA_SESSION_TIMEOUT` (default 30 seconds; the broker allows 6 s to 5 min).
 */
export const config: Config.Config<ConsumerConfig> = Config.all({
  kafka: KafkaSettings.config({ clientId: "rating" }),
  consumer: Config.all({
    group: Config.nonEmptyString("group").pipe(Config.withDefault(DEFAULTS.group)),
    deadLetterTopic: Config.nonEmptyString("deadLetterTopic").pipe(Config.option),
    concurrency: positive("concurrency").pipe(Config.withDefault(DEFAULTS.concurrency)),
    maxBytesPerPartition: positive("maxBytesPerPartition").pipe(Config.withDefault(DEFAULTS.maxBytesPerPartition)),
    drainTimeout: Config.duration("drainTimeout").pipe(Config.withDefault(DEFAULTS.drainTimeout)),
    sessionTimeout: Config.duration("sessionTimeout").pipe(Config.withDefault(DEFAULTS.sessionTimeout))
  }).pipe(Config.nested("kafka"))
}).pipe(Config.map(({ consumer: { deadLetterTopic, ...consumer }, kafka }) => ({
  ...defaults(kafka),
  ...consumer,
  deadLetterTopic: Option.getOrElse(deadLetterTopic, () => defaults(kafka).deadLetterTopic)
})))

/** Dead-letter record headers: why, and where the message came from. */
export const DeadLetterHeaders = {
  reason: "dead-letter-reason",
  topic: "dead-letter-topic",
  partition: "dead-letter-partition",
  offset: "dead-letter-offset"
} as const

/** Dead-lettered messages by why: `invalid` (not a valid rating event) or `refused` (storage cannot hold it). */
const deadLettered = Metric.counter("rating_events_dead_lettered_total", {
  description:
    "Kafka messages sent to the dead-letter topic, by reason: invalid (not a valid rating event), refused (storage cannot hold it)",
  incremental: true
})
const deadLetteredInvalid = Metric.tagged(deadLettered, "reason", "invalid")
const deadLetteredRefused = Metric.tagged(deadLettered, "reason", "refused")
const consumerLag = Metric.gauge("rating_consumer_lag", {
  description: "Messages in the partition after the batch being applied"
})

/** The stream a partition is to the repository: its checkpoint does not depend on the group's name. */
export const streamOf = (topic: string, partition: number) => `kafka/${topic}/${partition}`

interface DeadLetter {
  readonly message: KafkaMessage
  readonly reason: string
}

interface Decoded {
  readonly events: ReadonlyArray<PositionedEvent>
  readonly invalid: ReadonlyArray<DeadLetter>
}

const decode = (messages: ReadonlyArray<KafkaMessage>): Decoded => {
  const events: Array<PositionedEvent> = []
  const invalid: Array<{ message: KafkaMessage; reason: string }> = []
  for (const message of messages) {
    const parsed = message.value === null
      ? Either.left("the message has no value")
      : RatingEventJson.parse(message.value.toString("utf8"))
    if (Either.isRight(parsed)) events.push({ position: BigInt(message.offset), event: parsed.right })
    else invalid.push({ message, reason: parsed.left })
  }
  return { events, invalid }
}

/** A message's W3C trace headers, as the publisher put them there. */
const carrierOf = (message: KafkaMessage | undefined): Telemetry.Carrier => {
  const headers = message?.headers ?? {}
  const text = (name: string) => {
    const value = headers[name]
    const first = Array.isArray(value) ? value[0] : value
    return first === undefined ? undefined : first.toString()
  }
  return { traceparent: text("traceparent"), tracestate: text("tracestate") }
}

const MAX_LINKS = 32

const traceLinks = (messages: ReadonlyArray<KafkaMessage>): ReadonlyArray<Tracer.SpanLink> => {
  // A batch's messages mostly share a few senders' contexts: parse each distinct header once.
  const seen = new Set<string>()
  const links: Array<Tracer.SpanLink> = []
  for (const message of messages) {
    if (links.length >= MAX_LINKS) break
    const carrier = carrierOf(message)
    if (carrier.traceparent === undefined || seen.has(carrier.traceparent)) continue
    seen.add(carrier.traceparent)
    Option.map(Telemetry.extract(carrier), (span) => links.push({ _tag: "SpanLink", span, attributes: {} }))
  }
  return links
}

/**
 * Whether a broker answers (for the service's health): fails while none of
 * `config.brokers` can be reached.
 */
export const brokerCheck = (config: KafkaSettings.KafkaConfig) =>
  Effect.gen(function*() {
    const admin = yield* Effect.acquireRelease(
      Effect.map(Kafka.make({ ...config, clientId: `${config.clientId}-health` }), (kafka) =>
        kafka.admin({ retry: { retries: 0 } })),
      (admin) =>
        Effect.promise(() => admin.disconnect().catch(() => undefined))
    )
    return Effect.tryPromise({
      try: async () => {
        await admin.connect()
        await admin.describeCluster()
      },
      catch: Kafka.unavailable(config)
    })
  })

/** Registers the broker check with the service's readiness (gRPC health NOT_SERVING while no broker answers). */
export const layerBrokerCheck = (
  config: KafkaSettings.KafkaConfig
): Layer.Layer<never, Tls.TlsError, Readiness.Readiness> =>
  Layer.unwrapScoped(Effect.map(brokerCheck(config), (check) => Readiness.layerCheck("kafka", check)))

const retryForever = Schedule.exponential("200 millis").pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.jittered
)

export const make = (config: ConsumerConfig) =>
  Effect.gen(function*() {
    const kafka = yield* Kafka.make(config.kafka)
    // Wrong credentials or an untrusted broker stop the start; a broker that is down is waited for.
    yield* Kafka.checkAccess(config.kafka)
    const unavailable = Kafka.unavailable(config.kafka)
    /** Sends `letters` to the dead-letter topic, retrying until the broker has them (acks from all replicas). */
    const sendDeadLetters = (
      deadLetters: Producer,
      batch: Batch,
      letters: ReadonlyArray<DeadLetter>,
      kind: { readonly counter: Metric.Metric.Counter<number>; readonly log: string }
    ) =>
      Effect.tryPromise({
        try: () =>
          deadLetters.send({
            topic: config.deadLetterTopic,
            acks: -1,
            messages: letters.map(({ message, reason }) => ({
              key: message.key,
              value: message.value,
              headers: {
                ...message.headers,
                [DeadLetterHeaders.reason]: reason,
                [DeadLetterHeaders.topic]: batch.topic,
                [DeadLetterHeaders.partition]: String(batch.partition),
                [DeadLetterHeaders.offset]: message.offset
              } satisfies IHeaders
            }))
          }),
        catch: unavailable
      }).pipe(
        Effect.tapError((error) => Effect.logWarning("dead-lettering failed; retrying", error)),
        Effect.retry(retryForever),
        Effect.orDie,
        Effect.zipRight(Metric.incrementBy(kind.counter, letters.length)),
        Effect.zipRight(Effect.forEach(letters, ({ message, reason }) =>
          Effect.logWarning(kind.log).pipe(
            Effect.annotateLogs({ topic: batch.topic, partition: batch.partition, offset: message.offset, reason })
          ), { discard: true }))
      )

    const consume: RatingEventSource["Type"]["consume"] = (handlers) =>
      Effect.gen(function*() {
        // Connected here rather than at build, so the service starts (and serves reads) while the broker is away.
        const deadLetters = yield* Kafka.producer(kafka, config.kafka).pipe(
          Effect.tapError((error) => Effect.logWarning("cannot connect the dead-letter producer yet; retrying", error)),
          Effect.retry(retryForever),
          Effect.orDie // the schedule never ends
        )
        const fibers = yield* FiberSet.make<void, unknown>()
        const runPromise = yield* FiberSet.runtimePromise(fibers)<
          Effect.Effect.Context<ReturnType<typeof handlers.stream>>
        >()
        const consumer = kafka.consumer({
          groupId: config.group,
          maxBytesPerPartition: config.maxBytesPerPartition,
          sessionTimeout: Duration.toMillis(config.sessionTimeout),
          heartbeatInterval: Math.max(100, Math.floor(Duration.toMillis(config.sessionTimeout) / 10)),
          // Never give up on the broker: kafkajs restarts the consumer with backoff.
          retry: { restartOnFailure: () => Promise.resolve(true) }
        })

        const processBatch = (batch: Batch, heartbeat: () => Promise<void>, resolveOffset: (offset: string) => void) =>
          Effect.gen(function*() {
            const { events, invalid } = decode(batch.messages)
            if (invalid.length > 0) {
              yield* sendDeadLetters(deadLetters, batch, invalid, {
                counter: deadLetteredInvalid,
                log: "dead-lettered an invalid rating event"
              })
            }
            const setAside = (event: PositionedEvent, reason: string) => {
              const offset = event.position.toString()
              const message = batch.messages.find((m) => m.offset === offset)
              return message === undefined
                ? Effect.dieMessage(`no message at offset ${offset} in the batch`)
                : sendDeadLetters(deadLetters, batch, [{ message, reason: `storage refused it: ${reason}` }], {
                  counter: deadLetteredRefused,
                  log: "dead-lettered a rating event storage refused"
                })
            }
            const next = BigInt(batch.lastOffset()) + 1n
            // The batch may wait long for storage; keep the group from deciding we died.
            const beating = yield* Effect.tryPromise(heartbeat).pipe(
              Effect.ignore,
              Effect.repeat(Schedule.spaced("1 second")),
              Effect.fork
            )
            yield* handlers.stream({ stream: streamOf(batch.topic, batch.partition), events, next, setAside }).pipe(
              Effect.ensuring(Fiber.interrupt(beating))
            )
            // Move this consumer's fetch position past the batch (kafkajs fetches from resolved, not committed, offsets).
            resolveOffset(batch.lastOffset())
            yield* Metric.set(
              Metric.tagged(Metric.tagged(consumerLag, "topic", batch.topic), "partition", String(batch.partition)),
              Number(batch.highWatermark) - Number(next)
            )
            // Stored first, committed second: a failed commit only means a redelivery the repository recognises.
            yield* Effect.tryPromise({
              try: () =>
                consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next.toString() }]),
              catch: unavailable
            }).pipe(
              Effect.catchAll((error) =>
                Effect.logWarning("committing the offset failed; the batch will be redelivered and skipped", error)
              )
            )
          }).pipe(
            Effect.annotateLogs({ topic: batch.topic, partition: batch.partition }),
            Effect.withSpan("RatingEventSourceKafka.batch", {
              attributes: {
                "messaging.destination.name": batch.topic,
                "messaging.kafka.partition": batch.partition,
                "batch.size": batch.messages.length
              },
              links: traceLinks(batch.messages.slice(1))
            }),
            // One batch holds many senders' events: it continues the first one's trace and links the others.
            Telemetry.continueFrom(carrierOf(batch.messages[0]))
          )

        yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: async () => {
              await consumer.connect()
              await consumer.subscribe({ topics: [config.kafka.topic], fromBeginning: true })
            },
            catch: unavailable
          }).pipe(
            Effect.tapError((error) => Effect.logWarning("cannot join the consumer group yet; retrying", error)),
            Effect.retry(retryForever),
            Effect.orDie
          ),
          () =>
            Effect.gen(function*() {
              // Stop fetching, let the batch in hand be stored and committed, leave the group.
              const stopped = consumer.disconnect()
              // Finalizers are uninterruptible; the wait must not be, or the timeout could never cut it short.
              const waitStopped = (limit: Duration.DurationInput) =>
                Effect.promise(() => stopped).pipe(Effect.interruptible, Effect.timeoutOption(limit))
              const drained = yield* waitStopped(config.drainTimeout)
              if (Option.isNone(drained)) {
                yield* Effect.logWarning(
                  "the batch in hand did not finish in time; abandoning it (it will be redelivered)"
                )
                yield* FiberSet.clear(fibers)
                yield* waitStopped(Duration.seconds(5))
              }
              yield* Effect.logInfo("left the consumer group").pipe(Effect.annotateLogs({ group: config.group }))
            })
        )
        yield* Effect.tryPromise({
          try: () =>
            consumer.run({
              autoCommit: false,
              eachBatchAutoResolve: false,
              partitionsConsumedConcurrently: config.concurrency,
              eachBatch: async ({ batch, heartbeat, resolveOffset }) => {
                if (batch.isEmpty()) return
                await runPromise(processBatch(batch, heartbeat, resolveOffset))
              }
            }),
          catch: unavailable
        }).pipe(Effect.orDie)
        yield* Effect.logInfo("consuming rating events").pipe(
          Effect.annotateLogs({
            topic: config.kafka.topic,
            group: config.group,
            brokers: config.kafka.brokers.join(",")
          })
        )
        return yield* Effect.never
      }).pipe(Effect.scoped)

    return RatingEventSource.of({ consume })
  })

export const layer = (
  config: ConsumerConfig
): Layer.Layer<RatingEventSource, Kafka.KafkaAccessError | Tls.TlsError> =>
  Layer.scoped(RatingEventSource, make(config))
