/**
 * What a database that cannot be used at start means: a problem that passes by
 * itself (a server down, starting, unreachable for now), worth waiting for, or
 * one an operator must fix, said in one line.
 */
import { MigrationError } from "@effect/sql/Migrator"
import { Cause, Data } from "effect"
import * as ErrorChain from "../ErrorChain.js"
import { MigrationFileFailed } from "./MysqlMigrations.js"

/**
 * The database cannot be used and waiting will not change that (refused
 * credentials, a missing database, a migration that fails): the message says
 * what to fix, in one line, and the service stops.
 */
export class MysqlStartupError extends Data.TaggedError("MysqlStartupError")<{ readonly message: string }> {
  constructor(props: { readonly message: string }) {
    super(props)
    // An operator's problem, not a bug: a stack trace would only bury the message.
    this.stack = `${this.name}: ${this.message}`
  }
}

/**
 * The server did not answer the client's first statement in time, and no driver
 * error says why: @effect/sql-mysql2 gives up on its connection check by itself.
 */
export class NoAnswer extends Data.TaggedError("NoAnswer")<{ readonly cause: unknown }> {
  override get message() {
    return "no answer to the first statement in time"
  }
}

/** Node's socket errors and mysql2's carry a code (`ECONNREFUSED`, `ER_ACCESS_DENIED_ERROR`); the server's an errno. */
interface DriverError {
  readonly code: string
  readonly errno?: number
  readonly message: string
}

const isDriverError = (link: object): link is DriverError => {
  const { code, message } = link as Partial<DriverError>
  return typeof code === "string" && typeof message === "string"
}

/** The driver's (or the socket's) error somewhere in `error`'s cause chain. */
export const driverErrorIn = (error: unknown): DriverError | undefined => ErrorChain.find(error, isDriverError)

/** Down, starting, restarting or overloaded servers, and networks: these pass by themselves. */
const transientCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  // A name that does not resolve yet: Compose's and Kubernetes' DNS know a server only once it runs.
  "EAI_AGAIN",
  "ENOTFOUND",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT"
])
const transientErrnos = new Set([
  1040, // too many connections
  1053, // server shutdown in progress
  1205, // lock wait timeout (another instance migrating)
  1213, // deadlock
  1927 // MariaDB: connection killed (the server stopping)
])

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, " ").trim()

export interface StartupProblem {
  readonly transient: boolean
  readonly message: string
}

export interface Target {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
}

/** Whether waiting may help, and what the operator should read. */
export const startupProblem = (
  cause: Cause.Cause<unknown>,
  target: Target,
  migrations: { readonly directory: string }
): StartupProblem => {
  const error = Cause.squash(cause)
  const where = `MySQL ${target.host}:${target.port} database "${target.database}"`
  const driver = driverErrorIn(error)
  // Node's messages name their code ("connect ECONNREFUSED 127.0.0.1:3306"), the server's do not.
  const detail = oneLine(
    driver
      ? driver.message.includes(driver.code) ? driver.message : `${driver.code}: ${driver.message}`
      : error instanceof Error
      ? error.message
      : String(error)
  )
  if (
    error instanceof NoAnswer ||
    (driver && (transientCodes.has(driver.code) || (driver.errno !== undefined && transientErrnos.has(driver.errno))))
  ) {
    return { transient: true, message: `${where} cannot be reached: ${detail}` }
  }
  const fatal = (message: string): StartupProblem => ({ transient: false, message: oneLine(message) })
  const migration = ErrorChain.find(error, (link): link is MigrationFileFailed => link instanceof MigrationFileFailed)
  if (migration) return fatal(`${where}: migration ${migration.file} failed (${detail})`)
  if (error instanceof MigrationError) return fatal(`${where}: migrations in ${migrations.directory}: ${detail}`)
  switch (driver?.errno) {
    case 1045:
    case 1698: // access denied, no password given
      return fatal(`${where}: the server refused the credentials (${detail}); check MYSQL_USER and MYSQL_PASSWORD`)
    case 1049:
      return fatal(`${where} does not exist (${detail}); create it, or set MYSQL_DATABASE`)
    case 1044:
      return fatal(`${where}: user "${target.user}" may not use it (${detail})`)
  }
  return fatal(`${where}: ${detail}`)
}
