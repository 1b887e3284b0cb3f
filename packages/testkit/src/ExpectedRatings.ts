/**
 * What storage must hold after a sequence of rating events, computed
 * independently of the services: the test oracle for ingestion.
 */

/** A rating event in the original shape, as files and messages carry it. */
export interface EventLike {
  readonly eventType: "put" | "delete"
  readonly recordType: string
  readonly recordId: string
  readonly userId: string
  readonly value?: unknown
}

export interface Aggregate {
  readonly recordType: string
  readonly recordId: string
  readonly count: number
  readonly sum: number
}

/**
 * Folds the events in order: the final rating of every (record, user), keyed
 * `type/record/user`, and every record the events name (count 0 when all its
 * ratings were deleted), keyed `type/record`.
 */
export const independently = (events: Iterable<EventLike>) => {
  const ratings = new Map<string, number>()
  const aggregates = new Map<string, Aggregate>()
  const recordKey = (e: { readonly recordType: string; readonly recordId: string }) => `${e.recordType}/${e.recordId}`
  for (const event of events) {
    const record = recordKey(event)
    if (!aggregates.has(record)) {
      aggregates.set(record, { recordType: event.recordType, recordId: event.recordId, count: 0, sum: 0 })
    }
    const key = `${record}/${event.userId}`
    if (event.eventType === "put") ratings.set(key, Number(event.value))
    else ratings.delete(key)
  }
  for (const [key, value] of ratings) {
    const record = key.slice(0, key.lastIndexOf("/"))
    const aggregate = aggregates.get(record)!
    aggregates.set(record, { ...aggregate, count: aggregate.count + 1, sum: aggregate.sum + value })
  }
  return { ratings, aggregates }
}
