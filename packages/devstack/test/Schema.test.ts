/** schema/schema.sql (for reading) and the migrations the services apply (schema/metadata, schema/rating) make the same tables, and the same ranking prior row. */
import { SqlClient } from "@effect/sql"
import { MysqlClient } from "@effect/sql-mysql2"
import { assert, describe, it } from "@effect/vitest"
import * as MetadataRepositoryMysql from "@movieapp/metadata/adapters/MetadataRepositoryMysql"
import * as Mysql from "@movieapp/platform/Mysql"
import * as RatingRepositoryMysql from "@movieapp/rating/adapters/RatingRepositoryMysql"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import { Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const schemaSql = readFileSync(fileURLToPath(new URL("../../../schema/schema.sql", import.meta.url)), "utf8")
const TABLES = ["movies", "ratings", "rating_aggregates", "rating_ranking_prior", "rating_event_checkpoints"]

const createStatements = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const tables = yield* Effect.forEach(
    TABLES,
    (table) =>
      Effect.map(
        sql.unsafe<Record<string, string>>(`SHOW CREATE TABLE ${table}`),
        ([row]) => Object.values(row ?? {})[1] ?? ""
      )
  )
  // The one row a migration writes: the prior that the scores' expression holds (names
  // without underscores: the two clients transform column names differently).
  const prior = yield* sql.unsafe("SELECT id, prior_weight AS weight, prior_mean AS mean FROM rating_ranking_prior")
  return [...tables, JSON.stringify(prior)]
})

describe.runIf(await MariaDb.available())("schema", () => {
  it.scoped("schema.sql equals the migrations", () =>
    Effect.gen(function*() {
      const migrated = yield* MariaDb.makeTestDatabase
      const fromMigrations = yield* createStatements.pipe(
        Effect.provide(Layer.mergeAll(
          Mysql.layer(migrated, MetadataRepositoryMysql.migrations),
          Mysql.layer(migrated, RatingRepositoryMysql.migrations)
        ))
      )
      const plain = yield* MariaDb.makeTestDatabase
      const fromSchemaFile = yield* Effect.gen(function*() {
        const sql = yield* MysqlClient.MysqlClient
        yield* sql.unsafe(schemaSql).unprepared
        return yield* createStatements
      }).pipe(Effect.provide(MysqlClient.layer({
        host: plain.host,
        port: plain.port,
        database: plain.database,
        username: plain.user,
        password: plain.password
      })))
      assert.strictEqual(fromMigrations.length, TABLES.length + 1)
      assert.deepStrictEqual(fromSchemaFile, fromMigrations)
    }), 60_000)
})
