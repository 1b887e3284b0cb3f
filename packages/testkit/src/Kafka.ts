/**
 * A real Kafka broker for tests (scripts/kafka.sh starts one). Suites isolate
 * themselves with topics and groups of their own. Without a broker, suites are
 * skipped locally with a warning, and fail in CI (CI=true). Queries fail rather
 * than die, so callers can poll through a group coordinator that is still loading.
 */
import type { KafkaConfig } from "@movieapp/platform/KafkaSettings"
import { Duration, Effect, Redacted } from "effect"
import type { UnknownException } from "effect/Cause"
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, logLevel, ResourcePatternTypes } from "kafkajs"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"
import * as Poll from "./Poll.js"
import * as RequiredServer from "./RequiredServer.js"

export const brokers = (process.env.KAFKA_BROKERS ?? "127.0.0.1:9092").split(",") as [string, ...Array<string>]

/** Whether Kafka suites should run: the broker answers, or (outside CI) they are skipped. */
export const available = (): Promise<boolean> => {
  const [host, port] = brokers[0].split(":") as [string, string]
  return RequiredServer.available({ name: "Kafka", host, port: Number(port), start: "scripts/kafka.sh start" })
}

const repo = resolve(fileURLToPath(new URL("../../..", import.meta.url)))

/**
 * The broker's SASL_SSL listener as scripts/kafka.sh sets it up: SCRAM over TLS,
 * its certificate signed by the CA the script made, its development user.
 */
export const saslSsl = {
  brokers: (process.env.KAFKA_SASL_SSL_BROKERS ?? "127.0.0.1:9094").split(",") as [string, ...Array<string>],
  caFile: process.env.KAFKA_TLS_CA_FILE ?? resolve(process.env.KAFKA_DIR ?? `${repo}/.data/kafka`, "tls/ca.pem"),
  username: process.env.KAFKA_SASL_USERNAME ?? "movieapp",
  password: process.env.KAFKA_SASL_PASSWORD ?? "movieapp-dev-password",
  /** A user the broker allows only what ACLs grant it. */
  limited: { username: "ratingingestor", password: "ratingingestor-dev-password" }
}

/** Whether the SASL_SSL suites should run: the listener answers, or (outside CI) they are skipped. */
export const saslSslAvailable = (): Promise<boolean> => {
  const [host, port] = saslSsl.brokers[0].split(":") as [string, string]
  return RequiredServer.available({
    name: "Kafka's SASL_SSL listener",
    host,
    port: Number(port),
    start: "scripts/kafka.sh start (a broker started before the listener existed: stop, then start)"
  })
}

/** Client settings for the SASL_SSL listener, with `mechanism` and (unless given another) the right password. */
export const saslSslConfig = (
  topic: string,
  options: { readonly mechanism?: "scram-sha-256" | "scram-sha-512"; readonly password?: string } = {}
): KafkaConfig =>
  config(topic, {
    brokers: saslSsl.brokers,
    tls: { caFile: saslSsl.caFile },
    sasl: {
      mechanism: options.mechanism ?? "scram-sha-512",
      username: saslSsl.username,
      password: Redacted.make(options.password ?? saslSsl.password)
    }
  })

/** A name no other test run uses. */
export const unique = (prefix: string) =>
  `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`

/** Client settings for the test broker. */
export const config = (topic: string, overrides: Partial<KafkaConfig> = {}): KafkaConfig => ({
  brokers,
  clientId: "movieapp-test",
  topic,
  connectionTimeout: Duration.seconds(3),
  requestTimeout: Duration.seconds(30),
  ...overrides
})

const client = () => new Kafka({ clientId: "movieapp-testkit", brokers, logLevel: logLevel.NOTHING })

/** An admin connection for the scope's lifetime. */
export const admin = Effect.acquireRelease(
  Effect.promise(async () => {
    const admin = client().admin()
    await admin.connect()
    return admin
  }),
  (admin) => Effect.promise(() => admin.disconnect())
)

/** Creates `topic` with `partitions` partitions and waits until it has leaders. */
export const createTopic = (topic: string, partitions: number): Effect.Effect<void> =>
  Effect.scoped(Effect.gen(function*() {
    const a = yield* admin
    yield* Effect.promise(() =>
      a.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true })
    )
  }))

/** Grants `user` what a producer of `topic` needs (Write, Describe), through the PLAINTEXT listener's admin rights. */
export const grantWrite = (topic: string, user: string): Effect.Effect<void, UnknownException> =>
  Effect.scoped(Effect.gen(function*() {
    const a = yield* admin
    yield* Effect.tryPromise(() =>
      a.createAcls({
        acl: [AclOperationTypes.WRITE, AclOperationTypes.DESCRIBE].map((operation) => ({
          resourceType: AclResourceTypes.TOPIC,
          resourceName: topic,
          resourcePatternType: ResourcePatternTypes.LITERAL,
          principal: `User:${user}`,
          host: "*",
          operation,
          permissionType: AclPermissionTypes.ALLOW
        }))
      })
    )
  }))

/** Each partition's end offset (the offset the next message will get). */
export const endOffsets = (topic: string) =>
  Effect.scoped(Effect.gen(function*() {
    const a = yield* admin
    const offsets = yield* Effect.tryPromise(() => a.fetchTopicOffsets(topic))
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]))
  }))

/** The group's committed offset per partition (-1 when nothing is committed). */
export const committedOffsets = (group: string, topic: string) =>
  Effect.scoped(Effect.gen(function*() {
    const a = yield* admin
    const [offsets] = yield* Effect.tryPromise(() => a.fetchOffsets({ groupId: group, topics: [topic] }))
    return new Map((offsets?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]))
  }))

/** The group's state as the broker sees it (`Stable`, `Empty`, ...) and how many members it has. */
export const describeGroup = (group: string) =>
  Effect.scoped(Effect.gen(function*() {
    const a = yield* admin
    const { groups: [description] } = yield* Effect.tryPromise(() => a.describeGroups([group]))
    return { state: description?.state ?? "Dead", members: description?.members.length ?? 0 }
  }))

export interface ReadMessage {
  readonly partition: number
  readonly offset: string
  readonly key: string | null
  readonly value: string | null
  readonly headers: Record<string, string>
}

/** Every message of `topic` up to its current end, read with a throwaway group. */
export const readAll = (topic: string): Effect.Effect<ReadonlyArray<ReadMessage>, UnknownException> =>
  Effect.gen(function*() {
    const ends = yield* endOffsets(topic)
    const total = [...ends.values()].reduce((n, end) => n + end, 0n)
    const messages: Array<ReadMessage> = []
    if (total === 0n) return messages
    yield* Effect.async<void>((resume) => {
      const consumer = client().consumer({ groupId: unique("testkit-reader") })
      const done = (error?: unknown) => {
        void consumer.disconnect().finally(() => resume(error === undefined ? Effect.void : Effect.die(error)))
      }
      consumer.connect()
        .then(() => consumer.subscribe({ topics: [topic], fromBeginning: true }))
        .then(() =>
          consumer.run({
            eachMessage: async ({ partition, message }) => {
              messages.push({
                partition,
                offset: message.offset,
                key: message.key?.toString("utf8") ?? null,
                value: message.value?.toString("utf8") ?? null,
                headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]))
              })
              if (BigInt(messages.length) >= total) done()
            }
          })
        )
        .catch(done)
    })
    return messages.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))
  })

/** Messages in `topic` that `group` has not committed yet, per partition (nothing committed counts from 0). */
export const lag = (group: string, topic: string) =>
  Effect.gen(function*() {
    const ends = yield* endOffsets(topic)
    const committed = yield* committedOffsets(group, topic)
    return new Map([...ends].map(([partition, end]) => {
      const at = committed.get(partition) ?? -1n
      return [partition, end - (at < 0n ? 0n : at)]
    }))
  })

/** Waits until `group` has committed every message now in `topic`. */
export const awaitCaughtUp = (group: string, topic: string, timeout: Duration.DurationInput = "60 seconds") =>
  Poll.until(lag(group, topic), (lags) => [...lags.values()].every((n) => n === 0n), {
    what: `group ${group} to commit everything in ${topic} (lag per partition)`,
    timeout
  })
