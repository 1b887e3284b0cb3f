import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { MAX_ID_LENGTH } from "../src/Fields.js"
import { RatingEvent } from "../src/Rating.js"
import * as RatingEventJson from "../src/RatingEventJson.js"

const schemaDecode = Schema.decodeUnknownEither(RatingEvent)

/** Values of a field: the schema's own valid ones, and the edges and wrong types around them. */
// Weighted so that a good share of the objects is valid (all fields must be at once).
const identifierCandidates = fc.oneof(
  { arbitrary: fc.string({ minLength: 1, maxLength: MAX_ID_LENGTH }), weight: 8 },
  fc.constantFrom("", " ", "a ", " a", "\ta", "a\n", "\u00a0a", "a".repeat(MAX_ID_LENGTH), "a".repeat(MAX_ID_LENGTH + 1), "😀".repeat(64), "😀".repeat(65)),
  fc.constantFrom(0, 1, null, true, [], {}, ["a"])
)
const valueCandidates = fc.oneof(
  { arbitrary: fc.integer({ min: -2, max: 12 }), weight: 6 },
  fc.double({ min: -1, max: 12, noNaN: true }),
  fc.constantFrom(1.5, -0, 1e21, Number.MAX_SAFE_INTEGER + 2, "5", null, true, [], {}, [5])
)
const absentOr = <A>(arbitrary: fc.Arbitrary<A>) => fc.option(arbitrary, { nil: undefined, freq: 10 })

/** Objects near rating events: each field valid, invalid, of another type, or absent. */
const candidates = fc.record({
  eventType: absentOr(fc.oneof({ arbitrary: fc.constantFrom("put", "delete"), weight: 6 }, fc.constantFrom("PUT", "remove", "", 1, null))),
  recordType: absentOr(fc.oneof({ arbitrary: fc.constantFrom("movie", "tv"), weight: 6 }, fc.constantFrom("book", "Movie", "", 0, null))),
  recordId: absentOr(identifierCandidates),
  userId: absentOr(identifierCandidates),
  value: absentOr(valueCandidates),
  providerId: absentOr(identifierCandidates),
  extra: absentOr(fc.constantFrom("ignored", 1))
}, { requiredKeys: [] }).map((fields) => JSON.parse(JSON.stringify(fields)) as { readonly [key: string]: unknown })

describe("RatingEventJson", () => {
  it("accepts plainly valid events only where the schema accepts them, decoded as the schema decodes them", () => {
    let accepted = 0
    fc.assert(fc.property(candidates, (json) => {
      const plain = RatingEventJson.acceptPlainlyValid(json)
      if (plain === undefined) return
      accepted++
      const decoded = schemaDecode(json)
      assert.isTrue(Either.isRight(decoded), `accepted ${JSON.stringify(json)}, which the schema rejects`)
      assert.deepStrictEqual(plain, Either.getOrThrow(decoded))
    }), { numRuns: 20_000 })
    // Otherwise the property above would hold for a check that never accepts anything.
    assert.isAbove(accepted, 1000)
  })

  it("accepts every valid event without the schema, as its JSON form", () => {
    fc.assert(fc.property(Arbitrary.make(RatingEvent), (event) => {
      const json = JSON.parse(RatingEventJson.stringify(event)) as { readonly [key: string]: unknown }
      assert.deepStrictEqual(RatingEventJson.acceptPlainlyValid(json), Either.getOrThrow(schemaDecode(json)))
    }), { numRuns: 5_000 })
  })

  it("explains a rejection in one line naming the field", () => {
    const valid = { eventType: "put", recordType: "movie", recordId: "1", userId: "105", value: 5 }
    assert.deepStrictEqual(RatingEventJson.parse(JSON.stringify({ ...valid, value: 11 })), Either.left("value: must be an integer from 1 to 10"))
    assert.deepStrictEqual(RatingEventJson.parse(JSON.stringify({ ...valid, userId: " 105" })), Either.left("userId: must not start or end with whitespace"))
    assert.deepStrictEqual(RatingEventJson.parse("[1]"), Either.left("must be a JSON object, found an array"))
    assert.isTrue(Either.isLeft(RatingEventJson.parse("{")))
  })
})
