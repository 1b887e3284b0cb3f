import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { isIdentifier, MAX_ID_LENGTH } from "../src/Fields.js"
import { RatingEvent } from "../src/Rating.js"
import * as RatingEventJson from "../src/RatingEventJson.js"

const schemaDecode = Schema.decodeUnknownEither(RatingEvent)

/**
 * Characters an id may or may not hold: any code point, and the ones the rules
 * are about (lone surrogates, control characters, U+FFFD, whitespace), beside
 * astral ones (a surrogate pair is one character, not two lone ones).
 */
const idUnit = fc.oneof(
  { arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }), weight: 6 },
  fc.constantFrom(
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
    "\u0000",
    "\u0001",
    "\u001f",
    "\u007f",
    "\u0080",
    "\u009f",
    "\ufffd",
    "\ufeff",
    " ",
    "\t",
    "\u00a0",
    "😀",
    "\ud83d",
    "\ude00"
  )
)
/** Values of a field: the schema's own valid ones, and the edges and wrong types around them. */
// Weighted so that a good share of the objects is valid (all fields must be at once).
const identifierCandidates = fc.oneof(
  { arbitrary: fc.string({ minLength: 1, maxLength: MAX_ID_LENGTH }), weight: 12 },
  { arbitrary: fc.string({ unit: idUnit, minLength: 1, maxLength: 8 }), weight: 3 },
  fc.string({ unit: "binary", minLength: MAX_ID_LENGTH / 2 - 2, maxLength: MAX_ID_LENGTH + 2 }),
  fc.constantFrom(
    "",
    " ",
    "a ",
    " a",
    "\ta",
    "a\n",
    "\u00a0a",
    "a".repeat(MAX_ID_LENGTH),
    "a".repeat(MAX_ID_LENGTH + 1),
    "😀".repeat(64),
    "😀".repeat(65)
  ),
  fc.constantFrom(
    "\ud800",
    "a\udc00",
    "\ud83d\ude00\ud83d",
    "a\u0000b",
    "\u0007",
    "a\u007fb",
    "a\u0085b",
    "\ufffd",
    "a\ufffdb",
    "a\u200bb",
    "\ufeffa"
  ),
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
  eventType: absentOr(
    fc.oneof({ arbitrary: fc.constantFrom("put", "delete"), weight: 6 }, fc.constantFrom("PUT", "remove", "", 1, null))
  ),
  recordType: absentOr(
    fc.oneof({ arbitrary: fc.constantFrom("movie", "tv"), weight: 6 }, fc.constantFrom("book", "Movie", "", 0, null))
  ),
  recordId: absentOr(identifierCandidates),
  userId: absentOr(identifierCandidates),
  value: absentOr(valueCandidates),
  providerId: absentOr(identifierCandidates),
  extra: absentOr(fc.constantFrom("ignored", 1))
}, { requiredKeys: [] }).map((fields) => JSON.parse(JSON.stringify(fields)) as { readonly [key: string]: unknown })

describe("RatingEventJson", () => {
  it("accepts plainly valid events exactly where the schema accepts them, decoded as the schema decodes them", () => {
    let accepted = 0
    let rejected = 0
    fc.assert(
      fc.property(candidates, (json) => {
        const plain = RatingEventJson.acceptPlainlyValid(json)
        const decoded = schemaDecode(json)
        const shown = JSON.stringify(json)
        if (plain === undefined) {
          rejected++
          assert.isTrue(Either.isLeft(decoded), `rejected ${shown}, which the schema accepts`)
          return
        }
        accepted++
        assert.isTrue(Either.isRight(decoded), `accepted ${shown}, which the schema rejects`)
        assert.deepStrictEqual(plain, Either.getOrThrow(decoded))
      }),
      { numRuns: 20_000 }
    )
    // Otherwise the property above would hold for a check that never accepts (or never rejects) anything.
    assert.isAbove(accepted, 1000)
    assert.isAbove(rejected, 1000)
  })

  it("agrees with the id schema on every string, character by character", () => {
    const schemaAccepts = Schema.is(RatingEvent.members[0].fields.userId)
    fc.assert(
      fc.property(identifierCandidates, (id) => {
        assert.strictEqual(isIdentifier(id), schemaAccepts(id), JSON.stringify(id))
      }),
      { numRuns: 20_000 }
    )
  })

  it("accepts every valid event without the schema, as its JSON form", () => {
    fc.assert(
      fc.property(Arbitrary.make(RatingEvent), (event) => {
        const json = JSON.parse(RatingEventJson.stringify(event)) as { readonly [key: string]: unknown }
        assert.deepStrictEqual(RatingEventJson.acceptPlainlyValid(json), Either.getOrThrow(schemaDecode(json)))
      }),
      { numRuns: 5_000 }
    )
  })

  it("ids: a lone surrogate, a control character or U+FFFD anywhere is refused; astral characters are fine", () => {
    const valid = { eventType: "put", recordType: "movie", recordId: "1", userId: "105", value: 5 }
    const reason = (userId: string) => Either.flip(RatingEventJson.decode({ ...valid, userId }))
    assert.deepStrictEqual(
      reason("\ud800"),
      Either.right("userId: must be well-formed Unicode (it holds a lone surrogate)")
    )
    assert.deepStrictEqual(
      reason("a\udfffb"),
      Either.right("userId: must be well-formed Unicode (it holds a lone surrogate)")
    )
    assert.deepStrictEqual(reason("a\u0000b"), Either.right("userId: must not contain control characters"))
    assert.deepStrictEqual(reason("a\u0085b"), Either.right("userId: must not contain control characters"))
    assert.deepStrictEqual(
      reason("a\ufffdb"),
      Either.right("userId: must not contain U+FFFD (the replacement character)")
    )
    assert.isTrue(Either.isRight(RatingEventJson.decode({ ...valid, userId: "😀".repeat(64) })))
    // The same id arriving as JSON text: escapes and raw characters alike.
    assert.deepStrictEqual(
      RatingEventJson.parse(
        "{\"eventType\":\"put\",\"recordType\":\"movie\",\"recordId\":\"\\ud800\",\"userId\":\"u\",\"value\":5}"
      ),
      Either.left("recordId: must be well-formed Unicode (it holds a lone surrogate)")
    )
  })

  it("explains a rejection in one line naming the field", () => {
    const valid = { eventType: "put", recordType: "movie", recordId: "1", userId: "105", value: 5 }
    assert.deepStrictEqual(
      RatingEventJson.parse(JSON.stringify({ ...valid, value: 11 })),
      Either.left("value: must be an integer from 1 to 10")
    )
    assert.deepStrictEqual(
      RatingEventJson.parse(JSON.stringify({ ...valid, userId: " 105" })),
      Either.left("userId: must not start or end with whitespace")
    )
    assert.deepStrictEqual(RatingEventJson.parse("[1]"), Either.left("must be a JSON object, found an array"))
    assert.isTrue(Either.isLeft(RatingEventJson.parse("{")))
  })
})
