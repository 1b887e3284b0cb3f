import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { MovieId } from "@movieapp/contracts/Metadata"
import * as Mysql from "@movieapp/platform/Mysql"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import { Effect, Layer, Option } from "effect"
import * as MetadataRepositoryMysql from "../src/adapters/MetadataRepositoryMysql.js"
import { metadataRepositoryContract } from "./MetadataRepositoryContract.js"

const MysqlRepository = Layer.unwrapEffect(
  Effect.map(
    MariaDb.TestDatabase,
    (database) =>
      MetadataRepositoryMysql.layer.pipe(Layer.provide(Mysql.layer(database, MetadataRepositoryMysql.migrations)))
  )
).pipe(Layer.provide(MariaDb.layerTestDatabase))

describe.runIf(await MariaDb.available())("MariaDB", () => {
  metadataRepositoryContract("mysql", MysqlRepository)

  it.scoped(
    "a page by title, first or after a cursor, is one range read of the title index, never sorted",
    () =>
      Effect.gen(function*() {
        const database = yield* MariaDb.makeTestDatabase
        const sql = yield* SqlClient.SqlClient.pipe(
          Effect.provide(Layer.fresh(Mysql.layer(database, MetadataRepositoryMysql.migrations)).pipe(Layer.extendScope))
        )
        // Enough rows for the plan a catalogue gets: on 2,000, MariaDB rightly finds
        // scanning and sorting the whole table cheaper for a first page.
        for (let from = 0; from < 5000; from += 1000) {
          yield* sql.unsafe(
            `INSERT INTO movies (id, title, description, director) VALUES ${
              Array.from({ length: 1000 }, (_, k) => `('m${from + k}', 'Title ${((from + k) * 7919) % 5000}', '', '')`)
                .join(", ")
            }`
          )
        }
        yield* sql`ANALYZE TABLE movies`
        // The adapter's own statements, as it sends them.
        for (const after of [Option.none(), Option.some({ title: "Title 1000", id: MovieId.make("m77") })]) {
          const [text, params] = MetadataRepositoryMysql.titlePageStatement(sql, 21, after).compile()
          const query = `${text} ${JSON.stringify(params)}`
          const plan = yield* sql.unsafe<{ key: string | null; Extra: string }>(`EXPLAIN ${text}`, params)
          assert.lengthOf(plan, 1, query)
          assert.strictEqual(plan[0]!.key, "movies_by_title", query)
          assert.notInclude(plan[0]!.Extra, "filesort", query)
        }
      }),
    60_000
  )
})
