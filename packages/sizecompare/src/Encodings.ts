/**
 * One movie metadata record in the three wire formats the original Go program compared:
 * JSON, XML and protobuf.
 */
import { Metadata } from "@movieapp/proto/gen/movieapp/v1/metadata"
import { Schema } from "effect"
import { XMLBuilder, XMLParser } from "fast-xml-parser"

/** The record being encoded: the four string fields of `movieapp.v1.Metadata`. */
export const MetadataRecord = Schema.Struct({
  id: Schema.String,
  title: Schema.String,
  description: Schema.String,
  director: Schema.String
})
export type MetadataRecord = typeof MetadataRecord.Type

/** A wire format: `decode(encode(record))` gives back an equal record. */
export interface Encoding {
  readonly name: "json" | "xml" | "protobuf"
  readonly encode: (record: MetadataRecord) => Uint8Array
  /** Throws when the bytes are not a record in this format. */
  readonly decode: (bytes: Uint8Array) => MetadataRecord
}

/** The record the comparison uses unless it is given another one. */
export const sampleRecord: MetadataRecord = {
  id: "tt0111161",
  title: "The Shawshank Redemption",
  description:
    "Over the course of several years, two convicts form a friendship, seeking consolation and, eventually, redemption through basic compassion.",
  director: "Frank Darabont"
}

const utf8Encoder = new TextEncoder()
// Fatal, so that bytes which are not UTF-8 are rejected instead of decoding to U+FFFD.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })

// JSON and XML carry no schema, so their decoders check the shape (and drop unknown fields, as
// protobuf's decoder does); protobuf's generated decoder is typed by construction.
const decodeRecord = Schema.decodeUnknownSync(MetadataRecord)

/** Compact JSON text in UTF-8, keys in field order. */
export const json: Encoding = {
  name: "json",
  encode: ({ description, director, id, title }) =>
    // A fresh object, so that fields beyond the four never reach the output.
    utf8Encoder.encode(JSON.stringify({ id, title, description, director })),
  decode: (bytes) => decodeRecord(JSON.parse(utf8Decoder.decode(bytes)))
}

const xmlEscapes: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  "\"": "&quot;",
  "'": "&apos;",
  // XML parsers turn a literal CR (or CRLF) into LF, so a CR survives only as a reference.
  "\r": "&#13;"
}
const escapeXmlText = (text: string): string => text.replace(/[&<>"'\r]/g, (char) => xmlEscapes[char] ?? char)

const xmlBuilder = new XMLBuilder({
  // The builder's documented options cannot escape CR, so the values are escaped here instead.
  processEntities: false,
  tagValueProcessor: (_name, value) => typeof value === "string" ? escapeXmlText(value) : value
})
const xmlEntities: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'" }

/**
 * Resolves the five predefined XML entities and character references such as the `&#13;`
 * written above. The parser's own decoder handles character references only together with the
 * whole HTML entity table, which makes parsing several times slower and would skew the
 * benchmark. Entities a DOCTYPE declares are left unexpanded: a record never needs them.
 */
const xmlEntityDecoder = {
  decode: (text: string) =>
    text.includes("&")
      ? text.replace(
        /&(?:#(\d+)|#x([0-9a-fA-F]+)|(amp|lt|gt|quot|apos));/g,
        (reference, decimal?: string, hex?: string, name?: string) =>
          decimal !== undefined
            ? String.fromCodePoint(Number.parseInt(decimal, 10))
            : hex !== undefined
            ? String.fromCodePoint(Number.parseInt(hex, 16))
            : xmlEntities[name ?? ""] ?? reference
      )
      : text,
  setExternalEntities: () => {},
  addInputEntities: () => {},
  reset: () => {},
  setXmlVersion: () => {}
}

const xmlParser = new XMLParser({
  // Every field is text: "007" must stay "007", not become the number 7.
  parseTagValue: false,
  // Leading and trailing spaces are part of the value.
  trimValues: false,
  entityDecoder: xmlEntityDecoder
})
const decodeXmlDocument = Schema.decodeUnknownSync(Schema.Struct({ metadata: MetadataRecord }))

/**
 * XML in UTF-8 without a declaration: `<metadata>` holding one child element per field, in
 * field order, with no whitespace between elements.
 */
export const xml: Encoding = {
  name: "xml",
  encode: ({ description, director, id, title }) =>
    utf8Encoder.encode(xmlBuilder.build({ metadata: { id, title, description, director } })),
  decode: (bytes) => decodeXmlDocument(xmlParser.parse(utf8Decoder.decode(bytes))).metadata
}

/** The protobuf wire format of `movieapp.v1.Metadata`. */
export const protobuf: Encoding = {
  name: "protobuf",
  encode: (record) => Metadata.encode(record).finish(),
  decode: (bytes) => {
    const { description, director, id, title } = Metadata.decode(bytes)
    return { id, title, description, director }
  }
}

/** The three encodings in the order they are reported, JSON (the baseline) first. */
export const all: ReadonlyArray<Encoding> = [json, xml, protobuf]
