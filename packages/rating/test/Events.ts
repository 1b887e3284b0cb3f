/** Rating events of movies, for tests: a user's rating put, or removed. */
import { type RatingEvent, RatingValue, RecordId, UserId } from "@movieapp/contracts/Rating"

export const put = (recordId: string, userId: string, value: number): RatingEvent => ({
  eventType: "put",
  recordType: "movie",
  recordId: RecordId.make(recordId),
  userId: UserId.make(userId),
  value: RatingValue.make(value)
})

export const remove = (recordId: string, userId: string): RatingEvent => ({
  eventType: "delete",
  recordType: "movie",
  recordId: RecordId.make(recordId),
  userId: UserId.make(userId)
})
