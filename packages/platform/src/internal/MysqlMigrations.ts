/** Migrations as plain SQL files, for @effect/sql's migrator. */
import { FileSystem } from "@effect/platform"
import { MysqlClient } from "@effect/sql-mysql2"
import { type Loader, MigrationError } from "@effect/sql/Migrator"
import { Data, Effect } from "effect"

/** A migration file whose SQL failed, kept in the cause so the startup error can name the file. */
export class MigrationFileFailed
  extends Data.TaggedError("MigrationFileFailed")<{ readonly file: string; readonly cause: unknown }>
{}

/**
 * Migrations as plain SQL files named `<id>_<name>.sql`, applied in id order, each
 * once (recorded in `table`, the migrator's table). A file may hold several
 * statements, so it is sent unprepared.
 *
 * MySQL commits DDL on the spot, and with it the migrator's record of the
 * migration, written before the migration runs: a file that fails after its first
 * statement would count as applied at the next start. So a failing migration
 * removes its record (and those of the ones after it, not run either) before the
 * migrator rolls back; its statements that did run stay, and running it again
 * says what is in the way.
 */
export const sqlFileLoader = (directory: string, table: string): Loader<FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const files = yield* fs.readDirectory(directory)
    return yield* Effect.forEach(
      files.flatMap((file) => {
        const match = file.match(/^(\d+)_(.+)\.sql$/)
        return match ? [{ file: `${directory}/${file}`, id: Number(match[1]), name: match[2]! }] : []
      }),
      ({ file, id, name }) =>
        Effect.map(fs.readFileString(file), (text) => {
          const migration = Effect.flatMap(MysqlClient.MysqlClient, (sql) =>
            sql.unsafe(text).unprepared.pipe(
              Effect.tapError(() => sql`DELETE FROM ${sql(table)} WHERE migration_id >= ${id}`.pipe(Effect.ignore)),
              Effect.mapError((cause) => new MigrationFileFailed({ file, cause }))
            ))
          return [id, name, Effect.succeed(migration)] as const
        })
    )
  }).pipe(
    Effect.mapError((cause) =>
      new MigrationError({ reason: "failed", message: `cannot read the migrations in ${directory}: ${cause.message}` })
    )
  )
