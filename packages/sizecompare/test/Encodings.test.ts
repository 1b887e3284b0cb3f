import { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it, layer, vi } from "@effect/vitest"
import { Effect } from "effect"
import * as Cli from "../src/Cli.js"
import * as Encodings from "../src/Encodings.js"
import type { MetadataRecord } from "../src/Encodings.js"
import { type Size, sizes } from "../src/SizeComparison.js"

// Field order of `movieapp.v1.Metadata`: field numbers 1 to 4, and the order of JSON keys and
// XML elements.
const fields = ["id", "title", "description", "director"] as const

const records: Record<string, MetadataRecord> = {
  sample: Encodings.sampleRecord,
  empty: { id: "", title: "", description: "", director: "" },
  markup: {
    id: "<&>",
    title: "\"quoted\" & 'apostrophed'",
    description: "a < b && c > d; ]]> <!-- --> &amp;",
    director: "<metadata>"
  },
  nonAscii: {
    id: "tt0211915",
    title: "Le Fabuleux Destin d'Amélie Poulain 🎬",
    description: "千と千尋の神隠し 👧🏻‍🦰",
    director: "Jean-Pierre Jeunet"
  },
  numberLike: { id: "007", title: "1", description: "1e3", director: "true" },
  whitespace: { id: " 1 ", title: "\ttabbed\t", description: "line 1\r\nline 2\rline 3\n", director: "  " },
  jsonLike: { id: "{\"id\":1}", title: "back\\slash", description: "control \u0001\u001f\b\f chars", director: "null" },
  // Long enough that protobuf needs a three-byte length prefix.
  long: { id: "tt0000001", title: "T", description: "word ".repeat(4000), director: "D" }
}

// The expected sizes are computed here from the record alone, not with any encoder.

/** Bytes of one character (one code point) in UTF-8. */
const utf8CharLength = (char: string) => {
  const codePoint = char.codePointAt(0) ?? 0
  return codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4
}

/** Sum of `length(char)` over the code points of `text`. */
const sumChars = (text: string, length: (char: string) => number) => {
  let total = 0
  for (const char of text) total += length(char)
  return total
}

const utf8Length = (text: string) => sumChars(text, utf8CharLength)

const varintLength = (value: number): number => value < 0x80 ? 1 : 1 + varintLength(Math.floor(value / 0x80))

/** Each non-empty field: one tag byte (field numbers below 16), a varint length, the UTF-8 bytes. */
const expectedProtobufSize = (record: MetadataRecord) =>
  fields
    .filter((field) => record[field] !== "")
    .map((field) => utf8Length(record[field]))
    .reduce((total, length) => total + 1 + varintLength(length) + length, 0)

const jsonShortEscapes = new Set(["\"", "\\", "\b", "\f", "\n", "\r", "\t"])

/** A JSON string: quotes, two-character escapes, `\u00XX` for other control characters. */
const jsonStringLength = (text: string) =>
  2 + sumChars(text, (char) => jsonShortEscapes.has(char) ? 2 : char < "\u0020" ? 6 : utf8CharLength(char))

/** `{"id":…,"title":…,"description":…,"director":…}`: braces, commas between members, colons. */
const expectedJsonSize = (record: MetadataRecord) =>
  2 + (fields.length - 1) +
  fields.reduce((total, field) => total + jsonStringLength(field) + 1 + jsonStringLength(record[field]), 0)

const xmlReferences: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  "\"": "&quot;",
  "'": "&apos;",
  "\r": "&#13;"
}

const xmlTextLength = (text: string) => sumChars(text, (char) => xmlReferences[char]?.length ?? utf8CharLength(char))

/** `<name>content</name>` */
const xmlElementLength = (name: string, contentLength: number) => 2 * name.length + "<></>".length + contentLength

/** `<metadata><id>…</id><title>…</title><description>…</description><director>…</director></metadata>` */
const expectedXmlSize = (record: MetadataRecord) =>
  xmlElementLength(
    "metadata",
    fields.reduce((total, field) => total + xmlElementLength(field, xmlTextLength(record[field])), 0)
  )

const expectedSizes = (record: MetadataRecord): ReadonlyArray<Size> => {
  const json = expectedJsonSize(record)
  return [
    { format: "json", bytes: json, ratioToJson: 1 },
    { format: "xml", bytes: expectedXmlSize(record), ratioToJson: expectedXmlSize(record) / json },
    { format: "protobuf", bytes: expectedProtobufSize(record), ratioToJson: expectedProtobufSize(record) / json }
  ]
}

/** The table the CLI printed, as `{ format, bytes, ratio }` rows. */
const parseTable = (output: string) => {
  const [header, ...rows] = output.trim().split("\n").map((line) => line.trim().split(/\s+/))
  assert.deepStrictEqual(header, ["format", "bytes", "vs", "json"])
  return rows.map(([format, bytes, ratio]) => ({ format, bytes: Number(bytes), ratio }))
}

/** Runs the CLI on `args` and returns what it printed to standard output. */
const runCli = (args: ReadonlyArray<string>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => vi.spyOn(console, "log").mockImplementation(() => {})),
    (log) =>
      Cli.run(["node", "sizecompare", ...args]).pipe(
        Effect.map(() => log.mock.calls.map((call) => call.join(" ")).join("\n"))
      ),
    (log) => Effect.sync(() => log.mockRestore())
  )

describe("Encodings", () => {
  for (const encoding of Encodings.all) {
    for (const [name, record] of Object.entries(records)) {
      it(`${encoding.name} round-trips the ${name} record`, () => {
        assert.deepStrictEqual(encoding.decode(encoding.encode(record)), record)
      })
    }
  }

  it("json and xml decoding reject a record with a missing or non-string field", () => {
    const utf8 = (text: string) => new TextEncoder().encode(text)
    assert.throws(() => Encodings.json.decode(utf8(`{"id":7,"title":"","description":"","director":""}`)))
    assert.throws(() => Encodings.xml.decode(utf8("<metadata><id>1</id><title>t</title></metadata>")))
  })

  it("xml decoding resolves character references as other encoders write them", () => {
    // How Go's encoding/xml escapes quotes and line breaks.
    const document = "<metadata><id>007</id><title>&#34;Q&#34; &amp; &#39;A&#39;</title>" +
      "<description>a&#xD;&#xA;b&#x9;</description><director>&lt;&gt;</director></metadata>"
    assert.deepStrictEqual(Encodings.xml.decode(new TextEncoder().encode(document)), {
      id: "007",
      title: "\"Q\" & 'A'",
      description: "a\r\nb\t",
      director: "<>"
    })
  })

  it("protobuf leaves empty fields out entirely", () => {
    assert.strictEqual(Encodings.protobuf.encode(records.empty!).byteLength, 0)
  })
})

describe("sizes", () => {
  for (const [name, record] of Object.entries(records)) {
    it(`match the wire-format formulas for the ${name} record`, () => {
      assert.deepStrictEqual(sizes(record), expectedSizes(record))
    })
  }
})

layer(NodeContext.layer)("sizecompare command", (it) => {
  it.effect("prints the sample record's sizes", () =>
    Effect.gen(function*() {
      const printed = parseTable(yield* runCli([]))
      assert.deepStrictEqual(
        printed,
        expectedSizes(Encodings.sampleRecord).map(({ bytes, format, ratioToJson }) => ({
          format,
          bytes,
          ratio: `${ratioToJson.toFixed(2)}x`
        }))
      )
    }))

  it.scoped("prints the sizes of a record read from a file", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* fs.makeTempFileScoped({ suffix: ".json" })
      const record = records.nonAscii!
      yield* fs.writeFileString(path, JSON.stringify(record))
      const printed = parseTable(yield* runCli(["--file", path]))
      assert.deepStrictEqual(printed.map(({ bytes }) => bytes), expectedSizes(record).map(({ bytes }) => bytes))
    }))

  it.scoped("names the offending fields of a bad record file", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* fs.makeTempFileScoped({ suffix: ".json" })
      yield* fs.writeFileString(path, JSON.stringify({ id: "tt1", title: 42, description: "d" }))
      const error = yield* Effect.flip(runCli(["--file", path]))
      assert(error instanceof Cli.RecordFileError)
      assert.include(error.message, path)
      assert.match(error.message, /title: Expected string, actual 42/)
      assert.match(error.message, /director: is missing/)
    }))

  it.scoped("reports a file that is not JSON", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* fs.makeTempFileScoped({ suffix: ".json" })
      yield* fs.writeFileString(path, "id: tt1")
      const error = yield* Effect.flip(Cli.readRecord(path))
      assert.match(error.message, /not valid JSON/)
    }))
})
