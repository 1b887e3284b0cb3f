/**
 * Kafka ingestion throughput: events per second from the topic to stored
 * aggregates (MariaDB, exactly once), for 1,000,000 synthetic events, printed
 * beside the same run's raw MariaDB batched-upsert rate (the ceiling for storing
 * rows). Needs scripts/mariadb.sh start and scripts/kafka.sh start. Goal: at
 * least 50,000 events/s on a 2-core machine. Prints figures; asserts nothing.
 *
 * The consumers are rating-service instances of one consumer group, each its own
 * process (as in a deployment), so their CPU and memory are their own. The
 * packages run as compiled JavaScript, as in the images (`npm run build` first;
 * without `--conditions=source` they resolve to dist/): tsx's transpiled sources
 * cost measurably more per event.
 *
 *   npm run bench:kafka-ingest -- [events] [partitions] [instances]
 */
import * as Mysql from "@movieapp/platform/Mysql"
import * as RatingEventSourceKafka from "@movieapp/rating/adapters/RatingEventSourceKafka"
import * as RatingRepositoryMysql from "@movieapp/rating/adapters/RatingRepositoryMysql"
import * as Ingester from "@movieapp/rating/Ingester"
import * as RatingEventPublisherKafka from "@movieapp/ratingingestor/adapters/RatingEventPublisherKafka"
import * as Ingest from "@movieapp/ratingingestor/Ingest"
import * as Synthetic from "@movieapp/ratingingestor/Synthetic"
import * as TestKafka from "@movieapp/testkit/Kafka"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import * as ProcessStats from "@movieapp/testkit/ProcessStats"
import { Effect, Layer, Logger, LogLevel, Schema } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"

const EVENTS = Number(process.argv[2] ?? 1_000_000)
const PARTITIONS = Number(process.argv[3] ?? 3)
const INSTANCES = Number(process.argv[4] ?? 1)
const UPSERT_BATCH = 1000

/** The local servers' CPU so far, by the PIDs scripts/*.sh start record. */
const servers = { mariadb: ".data/mariadb/mariadb.pid", kafka: ".data/kafka/kafka.pid" } as const
const serverCpuMs = (name: keyof typeof servers): number | undefined => {
  try {
    return ProcessStats.cpuMillis(fs.readFileSync(servers[name], "utf8").trim())
  } catch {
    return undefined
  }
}
const sum = (values: ReadonlyArray<number | undefined>) =>
  values.some((v) => v === undefined) ? undefined : values.reduce<number>((a, b) => a + b!, 0)

const CONSUME = "--consume"

const repository = (database: Mysql.MysqlConfig) =>
  RatingRepositoryMysql.layer.pipe(Layer.provide(Mysql.layer(database, RatingRepositoryMysql.migrations)))

const rate = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString("en")}/s`
const Count = Schema.Union(Schema.Number, Schema.NumberFromString)

const program = Effect.gen(function*() {
  if (!(yield* Effect.promise(() => MariaDb.available()))) {
    return yield* Effect.dieMessage("MariaDB is needed: scripts/mariadb.sh start")
  }
  if (!(yield* Effect.promise(() => TestKafka.available()))) {
    return yield* Effect.dieMessage("Kafka is needed: scripts/kafka.sh start")
  }
  const workload = { count: EVENTS, seed: 42 }
  console.log(
    `workload: ${
      EVENTS.toLocaleString("en")
    } synthetic events (10% deletes), ${PARTITIONS} partitions, ${INSTANCES} consumer instance${
      INSTANCES === 1 ? "" : "s"
    }`
  )
  if (PARTITIONS % INSTANCES !== 0) {
    console.log(`  (${PARTITIONS} partitions do not split evenly over ${INSTANCES} instances)`)
  }

  // 1. The raw ceiling: the same rows upserted in batches of 1000 on one connection, no aggregates.
  const raw = yield* MariaDb.makeTestDatabase
  const rawSql = yield* MariaDb.client(raw)
  yield* rawSql`CREATE TABLE ratings (record_type VARCHAR(16) NOT NULL, record_id VARCHAR(128) NOT NULL, user_id VARCHAR(128) NOT NULL,
    value TINYINT NOT NULL, PRIMARY KEY (record_type, record_id, user_id)) ENGINE = InnoDB`
  const rawStarted = Date.now()
  let rows: Array<{ record_type: string; record_id: string; user_id: string; value: number }> = []
  const flush = Effect.suspend(() => {
    const batch = rows
    rows = []
    return rawSql`INSERT INTO ratings ${rawSql.insert(batch)} ON DUPLICATE KEY UPDATE value = VALUES(value)`
  })
  for (const event of Synthetic.generate(workload)) {
    rows.push({
      record_type: event.recordType,
      record_id: event.recordId,
      user_id: event.userId,
      value: event.eventType === "put" ? event.value : 0
    })
    if (rows.length === UPSERT_BATCH) yield* flush
  }
  if (rows.length > 0) yield* flush
  const rawMs = Date.now() - rawStarted
  console.log(
    `raw MariaDB batched upsert (${UPSERT_BATCH} rows per statement, 1 connection): ${rate(EVENTS, rawMs)} (${
      (rawMs / 1000).toFixed(1)
    } s)`
  )

  // 2. Publish to a fresh topic (not part of the ingestion figure).
  const topic = TestKafka.unique("bench-ratings")
  const group = TestKafka.unique("bench-rating")
  yield* TestKafka.createTopic(topic, PARTITIONS)
  const published = yield* Ingest.runGenerated({ ...workload, batchSize: 10_000 }).pipe(
    Effect.provide(RatingEventPublisherKafka.layer({ kafka: TestKafka.config(topic) }))
  )
  console.log(
    `published with the ingestor: ${rate(published.published, published.elapsedMs)} (${
      (published.elapsedMs / 1000).toFixed(1)
    } s)`
  )

  // 3. Consume with INSTANCES rating-service consumers of one group, each its own process,
  //    from their joining the group to the last checkpoint stored.
  const database = yield* MariaDb.makeTestDatabase
  const sql = yield* MariaDb.client(database)
  yield* Layer.build(repository(database)) // migrated before the clock starts
  const stored = sql`SELECT COALESCE(SUM(next_position), 0) AS n FROM rating_event_checkpoints`.pipe(
    Effect.flatMap(Schema.decodeUnknown(Schema.Tuple(Schema.Struct({ n: Count })))),
    Effect.map(([row]) => row.n),
    Effect.orDie
  )
  const consumers = yield* Effect.acquireRelease(
    Effect.sync(() =>
      Array.from(
        { length: INSTANCES },
        () =>
          spawn(process.execPath, [...process.execArgv, process.argv[1]!, CONSUME, topic, group, database.database], {
            stdio: ["ignore", "pipe", "inherit"]
          })
      )
    ),
    (children) => Effect.sync(() => children.forEach((child) => child.kill("SIGKILL")))
  )
  // Loaded and about to join: process start-up is not part of the figure.
  yield* Effect.forEach(
    consumers,
    (child) => Effect.async<void>((resume) => void child.stdout!.once("data", () => resume(Effect.void))),
    { discard: true }
  )
  const pids = consumers.map((child) => child.pid!)
  const cpuBefore = {
    consumers: sum(pids.map(ProcessStats.cpuMillis)),
    mariadb: serverCpuMs("mariadb"),
    kafka: serverCpuMs("kafka")
  }
  const started = Date.now()
  // Sampled every 20 ms: the figures are accurate to that.
  let last = 0
  let firstStored: { readonly at: number; readonly n: number } | undefined
  while (last < EVENTS) {
    yield* Effect.sleep("20 millis")
    if (consumers.some((child) => child.exitCode !== null)) return yield* Effect.dieMessage("a consumer exited")
    last = yield* stored
    if (firstStored === undefined && last > 0) firstStored = { at: Date.now(), n: last }
  }
  const ms = Date.now() - started
  // Where the time goes: CPU per event of the consumers, MariaDB and the broker.
  const perEvent = (before: number | undefined, after: number | undefined) =>
    before === undefined || after === undefined ? "n/a" : `${(((after - before) * 1000) / EVENTS).toFixed(1)} µs`
  const cpu = {
    consumers: perEvent(cpuBefore.consumers, sum(pids.map(ProcessStats.cpuMillis))),
    mariadb: perEvent(cpuBefore.mariadb, serverCpuMs("mariadb")),
    kafka: perEvent(cpuBefore.kafka, serverCpuMs("kafka"))
  }
  const steady = firstStored === undefined ? undefined : { n: EVENTS - firstStored.n, ms: Date.now() - firstStored.at }
  console.log(
    `Kafka -> stored aggregates (exactly once, MariaDB), ${INSTANCES} consumer instance${
      INSTANCES === 1 ? "" : "s"
    }, from joining the group: ${rate(EVENTS, ms)} (${(ms / 1000).toFixed(1)} s)`
  )
  if (steady !== undefined && steady.ms > 0) {
    console.log(`  after the first batch was stored (group join excluded): ${rate(steady.n, steady.ms)}`)
  }
  console.log(
    `  CPU per event: consumer${
      INSTANCES === 1 ? "" : "s"
    } (Node) ${cpu.consumers}, MariaDB ${cpu.mariadb}, Kafka broker ${cpu.kafka}`
  )
  console.log(
    `  peak memory (resident) per consumer: ${
      pids.map((pid) => `${ProcessStats.peakResidentMiB(pid) ?? "n/a"} MiB`).join(", ")
    }`
  )
  const best = steady !== undefined && steady.ms > 0 ? (steady.n / steady.ms) * 1000 : (EVENTS / ms) * 1000
  console.log(
    `ratio to the raw upsert rate: ${(best / (EVENTS / rawMs * 1000)).toFixed(2)}; goal 50,000 events/s: ${
      best >= 50_000 ? "met" : "not met"
    }`
  )
}).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)))

/** A consumer instance (the rating service's ingestion, nothing else): `bench-kafka-ingest.ts --consume <topic> <group> <database>`. */
const consume = (topic: string, group: string, database: string) =>
  Effect.sync(() => process.stdout.write("ready\n")).pipe(
    Effect.zipRight(Layer.launch(
      Ingester.layer.pipe(
        Layer.provide(
          RatingEventSourceKafka.layer({
            ...RatingEventSourceKafka.defaults(TestKafka.config(topic)),
            group,
            ...(process.env.BENCH_CONCURRENCY === undefined
              ? {}
              : { concurrency: Number(process.env.BENCH_CONCURRENCY) })
          }).pipe(Layer.orDie)
        ),
        Layer.provide(repository(MariaDb.config(database)))
      )
    )),
    Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )

const [, , mode, ...args] = process.argv
Effect.runPromise(mode === CONSUME ? consume(args[0]!, args[1]!, args[2]!) : program).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
