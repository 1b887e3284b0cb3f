/**
 * Kafka ingestion throughput: events per second from the topic to stored
 * aggregates (MariaDB, exactly once), for 1,000,000 synthetic events, printed
 * beside the same run's raw MariaDB batched-upsert rate (the ceiling for storing
 * rows). Needs scripts/mariadb.sh start and scripts/kafka.sh start. Goal: at
 * least 50,000 events/s on a 2-core machine. Prints figures; asserts nothing.
 *
 * The packages run as compiled JavaScript, as in the images (`npm run build`
 * first; without `--conditions=source` they resolve to dist/): tsx's transpiled
 * sources cost measurably more per event.
 *
 *   npm run bench:kafka-ingest -- [events] [partitions]
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
import { Effect, Layer, Logger, LogLevel, Schema } from "effect"
import * as fs from "node:fs"

const EVENTS = Number(process.argv[2] ?? 1_000_000)
const PARTITIONS = Number(process.argv[3] ?? 3)
const UPSERT_BATCH = 1000

/** CPU milliseconds a local server (scripts/*.sh start record its PID) has used so far; undefined where there is no /proc. */
const serverCpuMs = (pidFile: string): number | undefined => {
  try {
    const pid = fs.readFileSync(pidFile, "utf8").trim()
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return (Number(fields[11]) + Number(fields[12])) * (1000 / 100) // utime + stime, in clock ticks of 1/100 s
  } catch {
    return undefined
  }
}
const servers = { mariadb: ".data/mariadb/mariadb.pid", kafka: ".data/kafka/kafka.pid" } as const

const rate = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString("en")}/s`
const Count = Schema.Union(Schema.Number, Schema.NumberFromString)

const program = Effect.gen(function* () {
  if (!(yield* Effect.promise(() => MariaDb.available()))) return yield* Effect.dieMessage("MariaDB is needed: scripts/mariadb.sh start")
  if (!(yield* Effect.promise(() => TestKafka.available()))) return yield* Effect.dieMessage("Kafka is needed: scripts/kafka.sh start")
  const workload = { count: EVENTS, seed: 42 }
  console.log(`workload: ${EVENTS.toLocaleString("en")} synthetic events (10% deletes), ${PARTITIONS} partitions`)

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
    rows.push({ record_type: event.recordType, record_id: event.recordId, user_id: event.userId, value: event.eventType === "put" ? event.value : 0 })
    if (rows.length === UPSERT_BATCH) yield* flush
  }
  if (rows.length > 0) yield* flush
  const rawMs = Date.now() - rawStarted
  console.log(`raw MariaDB batched upsert (${UPSERT_BATCH} rows per statement, 1 connection): ${rate(EVENTS, rawMs)} (${(rawMs / 1000).toFixed(1)} s)`)

  // 2. Publish to a fresh topic (not part of the ingestion figure).
  const topic = TestKafka.unique("bench-ratings")
  const group = TestKafka.unique("bench-rating")
  yield* TestKafka.createTopic(topic, PARTITIONS)
  const published = yield* Ingest.runGenerated({ ...workload, batchSize: 10_000 }).pipe(
    Effect.provide(RatingEventPublisherKafka.layer({ kafka: TestKafka.config(topic) }))
  )
  console.log(`published with the ingestor: ${rate(published.published, published.elapsedMs)} (${(published.elapsedMs / 1000).toFixed(1)} s)`)

  // 3. Consume: from the rating service's first fetch to the last checkpoint stored.
  const database = yield* MariaDb.makeTestDatabase
  const sql = yield* MariaDb.client(database)
  const repository = RatingRepositoryMysql.layer.pipe(Layer.provide(Mysql.layer(database, RatingRepositoryMysql.migrations)))
  yield* Layer.build(repository) // migrated before the clock starts
  const stored = sql`SELECT COALESCE(SUM(next_position), 0) AS n FROM rating_event_checkpoints`.pipe(
    Effect.flatMap(Schema.decodeUnknown(Schema.Tuple(Schema.Struct({ n: Count })))),
    Effect.map(([row]) => row.n),
    Effect.orDie
  )
  const cpuBefore = { consumer: process.cpuUsage(), mariadb: serverCpuMs(servers.mariadb), kafka: serverCpuMs(servers.kafka) }
  const started = Date.now()
  yield* Layer.build(
    Ingester.layer.pipe(
      Layer.provide(RatingEventSourceKafka.layer({
        ...RatingEventSourceKafka.defaults(TestKafka.config(topic)),
        group,
        concurrency: Number(process.env.BENCH_CONCURRENCY ?? PARTITIONS)
      })),
      Layer.provide(repository)
    )
  )
  // Sampled every 20 ms: the figures are accurate to that.
  let last = 0
  let firstStored: { readonly at: number; readonly n: number } | undefined
  while (last < EVENTS) {
    yield* Effect.sleep("20 millis")
    last = yield* stored
    if (firstStored === undefined && last > 0) firstStored = { at: Date.now(), n: last }
  }
  const ms = Date.now() - started
  // Where the time goes: CPU per event of the consumer (this process), MariaDB and the broker.
  const consumerCpu = process.cpuUsage(cpuBefore.consumer)
  const perEvent = (cpuMs: number) => `${((cpuMs * 1000) / EVENTS).toFixed(1)} µs`
  const serverShare = (name: keyof typeof servers) => {
    const before = cpuBefore[name]
    const after = serverCpuMs(servers[name])
    return before === undefined || after === undefined ? "n/a" : perEvent(after - before)
  }
  const steady = firstStored === undefined ? undefined : { n: EVENTS - firstStored.n, ms: Date.now() - firstStored.at }
  console.log(`Kafka -> stored aggregates (exactly once, MariaDB), from joining the group: ${rate(EVENTS, ms)} (${(ms / 1000).toFixed(1)} s)`)
  if (steady !== undefined && steady.ms > 0) {
    console.log(`  after the first batch was stored (group join excluded): ${rate(steady.n, steady.ms)}`)
  }
  console.log(`  CPU per event: consumer (Node) ${perEvent((consumerCpu.user + consumerCpu.system) / 1000)}, MariaDB ${serverShare("mariadb")}, Kafka broker ${serverShare("kafka")}`)
  const best = steady !== undefined && steady.ms > 0 ? (steady.n / steady.ms) * 1000 : (EVENTS / ms) * 1000
  console.log(`ratio to the raw upsert rate: ${(best / (EVENTS / rawMs * 1000)).toFixed(2)}; goal 50,000 events/s: ${best >= 50_000 ? "met" : "not met"}`)
}).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)))

Effect.runPromise(program).then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
