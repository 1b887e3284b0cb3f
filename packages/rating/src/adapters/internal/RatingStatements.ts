/**
 * How the MySQL rating repository spells a batch as statements: how many rows
 * each statement takes, its placeholders and parameters, and how rows the server
 * returns are matched to the batch's changes.
 */
import { Array } from "effect"
import type { Change, Moved } from "../../domain/ChangeSet.js"
import * as Identity from "../../domain/Identity.js"

/**
 * Rows per statement: a batch from Kafka can hold tens of thousands of events,
 * one statement takes at most 65,535 placeholders, and MariaDB turns IN lists of
 * 1000 or more into a subquery it plans poorly.
 */
const STATEMENT_ROWS = 512

/**
 * `rows` cut into statements of STATEMENT_ROWS, the rest in powers of two. Each
 * statement text is prepared once per connection and kept (mysql2 caches up to
 * 16,000 per connection, the server allows 16,382 in all): with sizes from a set
 * of ten, a connection holds a few dozen, however batches vary.
 */
export const statementChunks = <T>(rows: ReadonlyArray<T>): ReadonlyArray<ReadonlyArray<T>> => {
  const chunks: Array<ReadonlyArray<T>> = []
  let at = 0
  while (at < rows.length) {
    let size = STATEMENT_ROWS
    while (size > rows.length - at) size /= 2
    chunks.push(rows.slice(at, at + size))
    at += size
  }
  return chunks
}

const placeholderLists = new Map<string, string>()

/** `(?, ?, ?), (?, ?, ?)`: `rows` rows of `width` placeholders (kept: the same few sizes recur for every batch). */
export const placeholders = (rows: number, width: number) => {
  const id = `${rows}x${width}`
  let list = placeholderLists.get(id)
  if (list === undefined) {
    list = Array.replicate(`(${Array.replicate("?", width).join(", ")})`, rows).join(", ")
    placeholderLists.set(id, list)
  }
  return list
}

/**
 * The rows of `keys` rating keys. MariaDB scans the whole table for a row
 * constructor IN list of one (and a DELETE locks every row it scans), so one key
 * is spelled out.
 */
export const whereKeys = (keys: number) =>
  keys === 1
    ? "record_type = ? AND record_id = ? AND user_id = ?"
    : `(record_type, record_id, user_id) IN (${placeholders(keys, 3)})`

// Statement parameters, flattened in loops: these run for every event of every batch.

/** (record_type, record_id, user_id) of each change. */
export const keyParams = (changes: ReadonlyArray<Change>) => {
  const params: Array<unknown> = []
  for (const { key } of changes) params.push(key.recordType, key.recordId, key.userId)
  return params
}

/** (record_type, record_id, user_id, value) of each change. */
export const ratingParams = (changes: ReadonlyArray<Change>) => {
  const params: Array<unknown> = []
  for (const { key, next } of changes) params.push(key.recordType, key.recordId, key.userId, next)
  return params
}

/** (record_type, record_id, ratings_count, ratings_sum) moves of each aggregate. */
export const aggregateParams = (moved: ReadonlyArray<Moved>) => {
  const params: Array<unknown> = []
  for (const { delta, key } of moved) params.push(key.recordType, key.recordId, delta.count, delta.sum)
  return params
}

/** A rating's identity, from a row selected as (record_type, record_id, user_id, ...) values. */
export const ratingOf = (row: ReadonlyArray<unknown>) =>
  Identity.rating({ recordType: String(row[0]), recordId: String(row[1]), userId: String(row[2]) })

const isRowOf = (change: Change, row: ReadonlyArray<unknown>) =>
  row[2] === change.key.userId && row[1] === change.key.recordId && row[0] === change.key.recordType

/**
 * Marks the changes of `chunk` whose rows an INSERT .. RETURNING `returned`.
 * MariaDB returns them in the order of the VALUES list, so they are matched in
 * one pass; a row out of that order is looked up (`changeOf`) instead, so the
 * result never depends on the order.
 */
export const markInserted = (
  chunk: ReadonlyArray<Change>,
  returned: ReadonlyArray<ReadonlyArray<unknown>>,
  changeOf: (row: ReadonlyArray<unknown>) => Change
) => {
  let at = 0
  for (const row of returned) {
    while (at < chunk.length && !isRowOf(chunk[at]!, row)) at++
    if (at < chunk.length) chunk[at++]!.applied = true
    else changeOf(row).applied = true
  }
}
