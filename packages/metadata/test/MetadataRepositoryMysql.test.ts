import { describe } from "@effect/vitest"
import * as Mysql from "@movieapp/platform/Mysql"
import * as MariaDb from "@movieapp/testkit/MariaDb"
import { Effect, Layer } from "effect"
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
})
