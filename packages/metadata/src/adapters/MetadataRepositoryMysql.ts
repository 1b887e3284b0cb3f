/** Metadata in MySQL/MariaDB (table `movies`, schema/metadata). */
import { SqlClient, SqlSchema } from "@effect/sql"
import { Metadata, MovieId } from "@movieapp/contracts/Metadata"
import * as Mysql from "@movieapp/platform/Mysql"
import { Effect, Layer } from "effect"
import { fileURLToPath } from "node:url"
import { MetadataRepository } from "../ports/MetadataRepository.js"

/** The metadata service's migrations (and the table recording which ran). */
export const migrations = {
  directory: fileURLToPath(new URL("../../../../schema/metadata", import.meta.url)),
  table: "metadata_migrations"
} as const

const unavailable = Mysql.orUnavailable("metadata storage")

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const findById = SqlSchema.findOne({
    Request: MovieId,
    Result: Metadata,
    execute: (id) => sql`SELECT id, title, description, director FROM movies WHERE id = ${id}`
  })
  return MetadataRepository.of({
    get: (id) =>
      findById(id).pipe(
        Effect.catchTag("ParseError", Effect.die), // rows we wrote ourselves: a mismatch is a bug
        unavailable,
        Effect.withSpan("MetadataRepository.get")
      ),
    put: (metadata) =>
      sql`INSERT INTO movies ${
        sql.insert({
          id: metadata.id,
          title: metadata.title,
          description: metadata.description,
          director: metadata.director
        })
      }
          ON DUPLICATE KEY UPDATE title = VALUES(title), description = VALUES(description), director = VALUES(director)`
        .pipe(
          Effect.asVoid,
          unavailable,
          Effect.withSpan("MetadataRepository.put")
        )
  })
})

export const layer: Layer.Layer<MetadataRepository, never, SqlClient.SqlClient> = Layer.effect(MetadataRepository, make)
