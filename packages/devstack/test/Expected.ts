/** What storage must hold after a sequence of rating events, computed independently of the services. */
import type { RatingEvent } from "@movieapp/contracts/Rating"

/** The final rating of every (record, user), and each record's count and sum, by folding the events in order. */
export const independently = (events: Iterable<RatingEvent>) => {
  const ratings = new Map<string, number>()
  for (const event of events) {
    const key = `${event.recordType}/${event.recordId}/${event.userId}`
    if (event.eventType === "put") ratings.set(key, event.value)
    else ratings.delete(key)
  }
  const aggregates = new Map<string, { count: number; sum: number }>()
  for (const [key, value] of ratings) {
    const record = key.slice(0, key.lastIndexOf("/"))
    const aggregate = aggregates.get(record) ?? { count: 0, sum: 0 }
    aggregates.set(record, { count: aggregate.count + 1, sum: aggregate.sum + value })
  }
  return { ratings, aggregates }
}

