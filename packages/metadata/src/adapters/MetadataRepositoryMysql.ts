/** Metadata in MySQL/MariaDB (table `movies`, schema/metadata). */
import { SqlClient, SqlSchema, type Statement } from "@effect/sql"
import { Metadata, MovieId, type TitleCursor } from "@movieapp/contracts/Metadata"
import * as Mysql from "@movieapp/platform/Mysql"
import { Effect, Layer, Option } from "effect"
import { fileURLToPath } from "node:url"
import { MetadataRepository } from "../ports/MetadataRepository.js"

/** The metadata service's migrations (and the table recording which ran). */
export const migrations = {
  directory: fileURLToPath(new URL("../../../../schema/metadata", import.meta.url)),
  table: "metadata_migrations"
} as const

const unavailable = Mysql.orUnavailable("metadata storage")

interface Row {
  readonly id: MovieId
  readonly title: string
  readonly description: string
  readonly director: string
}
// Rows we wrote ourselves, validated on the way in: checked again they would cost a listing
// more than its query (the field filters of twenty rows), and the caller decodes them anyway.
const fromRows = (rows: ReadonlyArray<Row>) =>
  rows.map((row) =>
    new Metadata({ id: row.id, title: row.title, description: row.description, director: row.director }, true)
  )

/**
 * A page of movies by title, after a cursor: one range read of the index on the
 * title's bytes (from its start, or from the cursor on), never sorted. Exported
 * for the test that checks exactly this statement's plan.
 */
export const titlePageStatement = (
  sql: SqlClient.SqlClient,
  limit: number,
  after: Option.Option<TitleCursor>
): Statement.Statement<Row> =>
  Option.match(after, {
    onNone: () => sql<Row>`SELECT id, title, description, director FROM movies ORDER BY title_key, id LIMIT ${limit}`,
    onSome: ({ id, title }) => {
      const key = Buffer.from(title, "utf8")
      // The range on title_key first, so the index is read from the cursor on.
      return sql<Row>`SELECT id, title, description, director FROM movies
        WHERE title_key >= ${key} AND (title_key > ${key} OR id > ${id})
        ORDER BY title_key, id LIMIT ${limit}`
    }
  })

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
    getMany: (ids) =>
      (ids.length === 0
        ? Effect.succeed([])
        : sql<Row>`SELECT id, title, description, director FROM movies WHERE ${sql.in("id", ids)}`.pipe(
          Effect.map(fromRows)
        )).pipe(unavailable, Effect.withSpan("MetadataRepository.getMany")),
    listByTitle: (limit, after) =>
      titlePageStatement(sql, limit, after).pipe(
        Effect.map(fromRows),
        unavailable,
        Effect.withSpan("MetadataRepository.listByTitle")
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
