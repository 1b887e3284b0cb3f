/** The comparison itself: how many bytes each encoding needs for one record. */
import * as Encodings from "./Encodings.js"
import type { Encoding, MetadataRecord } from "./Encodings.js"

/** The size of one record in one encoding. */
export interface Size {
  readonly format: Encoding["name"]
  readonly bytes: number
  /** `bytes` divided by the JSON size of the same record. */
  readonly ratioToJson: number
}

/** The sizes of `record` in every encoding, JSON first. */
export const sizes = (record: MetadataRecord): ReadonlyArray<Size> => {
  const jsonBytes = Encodings.json.encode(record).byteLength
  return Encodings.all.map((encoding) => {
    const bytes = encoding.encode(record).byteLength
    return { format: encoding.name, bytes, ratioToJson: bytes / jsonBytes }
  })
}

/** Rows of cells as a text table: the first `leftAligned` columns left-aligned, the others right-aligned. */
export const alignColumns = (rows: ReadonlyArray<ReadonlyArray<string>>, leftAligned = 1): string => {
  const widths: Array<number> = []
  for (const row of rows) {
    row.forEach((cell, column) => {
      widths[column] = Math.max(widths[column] ?? 0, cell.length)
    })
  }
  return rows
    .map((row) =>
      row
        .map((cell, column) =>
          column < leftAligned ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)
        )
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

/** The sizes as the table the CLI prints. */
export const formatSizes = (sizes: ReadonlyArray<Size>): string =>
  alignColumns([
    ["format", "bytes", "vs json"],
    ...sizes.map((size) => [size.format, String(size.bytes), `${size.ratioToJson.toFixed(2)}x`])
  ])
