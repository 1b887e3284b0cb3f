/** A batch as changes to stored ratings: the last event per rating counts, aggregates move by before and after. */
import { assert, describe, it } from "@effect/vitest"
import type { RatingEvent } from "@movieapp/contracts/Rating"
import * as ChangeSet from "../src/domain/ChangeSet.js"
import { put, remove } from "./Events.js"

/** The batch's changes, each told its value before from `stored` (record/user to value). */
const changesOver = (events: ReadonlyArray<RatingEvent>, stored: Record<string, number>) => {
  const changes = [...ChangeSet.finalChanges(events).values()]
  for (const change of changes) change.before = stored[`${change.key.recordId}/${change.key.userId}`]
  return changes
}
const users = (changes: ReadonlyArray<ChangeSet.Change>) =>
  changes.map((change) => `${change.key.recordId}/${change.key.userId}`)

describe("ChangeSet", () => {
  it("keeps the last event of each rating, in the order ratings first appear", () => {
    const finals = [
      ...ChangeSet.finalChanges([put("r", "a", 3), put("r", "b", 4), remove("r", "a"), put("r", "a", 9)]).values()
    ]
    assert.deepStrictEqual(finals.map((change) => [String(change.key.userId), change.next]), [["a", 9], ["b", 4]])
  })

  it("plans inserts, updates and deletes from the values before, and skips ratings that do not change", () => {
    const plan = ChangeSet.plan(changesOver(
      [put("r", "new", 5), put("r", "same", 7), put("r", "changed", 2), remove("r", "gone"), remove("r", "never")],
      { "r/same": 7, "r/changed": 8, "r/gone": 6 }
    ))
    assert.deepStrictEqual(users(plan.inserts), ["r/new"])
    assert.deepStrictEqual(users(plan.updates), ["r/changed"])
    assert.deepStrictEqual(users(plan.deletes), ["r/gone"])
    // +5 (new), -6 (changed: 8 to 2), -6 (gone): one rating more, one less.
    assert.deepStrictEqual(plan.moved.map(({ delta, key }) => [key.recordId, delta]), [["r", { count: 0, sum: -7 }]])
  })

  it("does not write again what the store applied while finding the values before, but moves the aggregates for it", () => {
    const changes = changesOver([put("r", "a", 5), remove("r", "b")], { "r/b": 3 })
    for (const change of changes) change.applied = true
    const plan = ChangeSet.plan(changes)
    assert.deepStrictEqual([plan.inserts, plan.updates, plan.deletes], [[], [], []])
    assert.deepStrictEqual(plan.moved.map(({ delta }) => delta), [{ count: 0, sum: 2 }])
  })

  it("lists moved aggregates in one order whatever the batch's, and leaves out those that do not move", () => {
    const events = [put("c", "u", 1), put("a", "u", 1), put("b", "u", 4), put("d", "u", 2)]
    const plan = ChangeSet.plan(changesOver(events, { "b/u": 4 }))
    const reversed = ChangeSet.plan(changesOver([...events].reverse(), { "b/u": 4 }))
    assert.deepStrictEqual(plan.moved.map(({ key }) => key.recordId), ["a", "c", "d"])
    assert.deepStrictEqual(reversed.moved.map(({ key }) => key.recordId), ["a", "c", "d"])
  })
})
