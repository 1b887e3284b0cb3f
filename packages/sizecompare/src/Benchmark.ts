/**
 * Encode and decode speed of each encoding, measured with tinybench.
 *
 * This lives in the package rather than in `scripts/` so that `tinybench` resolves to this
 * package's pinned version: from the repository root it would resolve to the older copy that
 * vitest brings.
 */
import { Console, Effect } from "effect"
import { Bench, type FnReturnedObject } from "tinybench"
import * as Encodings from "./Encodings.js"
import type { Encoding, MetadataRecord } from "./Encodings.js"
import { alignColumns } from "./SizeComparison.js"

/** The speed of one operation of one encoding. */
export interface Measurement {
  readonly operation: "encode" | "decode"
  readonly format: Encoding["name"]
  readonly opsPerSecond: number
  readonly nsPerOp: number
  /** Relative margin of error of the mean time, in percent. */
  readonly marginPercent: number
  /** `opsPerSecond` divided by JSON's for the same operation in the same run: above 1 is faster. */
  readonly speedVsJson: number
}

export interface Options {
  /** Time budget of each task in milliseconds. */
  readonly timeMs?: number
  /** Operations timed together as one sample. */
  readonly batchSize?: number
}

/**
 * Measures encoding and decoding of `record` in every format, one format after another.
 *
 * One operation takes only a few microseconds, not far above the timer's own cost, so each sample
 * times a batch of operations and records the batch mean, as tinybench documents for this case.
 */
export const measure = Effect.fn("SizeCompare.Benchmark.measure")(
  function*(record: MetadataRecord, options: Options = {}) {
    const batchSize = options.batchSize ?? 100
    const bench = new Bench({ time: options.timeMs ?? 500, warmupTime: 200, throws: true })
    const batched = (operation: () => unknown) => (): FnReturnedObject & { readonly result: unknown } => {
      let result: unknown
      const start = bench.now()
      for (let i = 0; i < batchSize; i++) result = operation()
      const elapsed = bench.now() - start
      // Handing the result out keeps the optimiser from discarding work whose value is unused.
      return { overriddenDuration: elapsed / batchSize, overriddenIterationCost: elapsed, result }
    }
    const tasks: Array<
      { readonly operation: Measurement["operation"]; readonly format: Encoding["name"]; readonly name: string }
    > = []
    for (const operation of ["encode", "decode"] as const) {
      for (const encoding of Encodings.all) {
        const name = `${operation} ${encoding.name}`
        const bytes = encoding.encode(record)
        bench.add(name, batched(operation === "encode" ? () => encoding.encode(record) : () => encoding.decode(bytes)))
        tasks.push({ operation, format: encoding.name, name })
      }
    }
    yield* Effect.promise(() => bench.run())

    const timed = tasks.map(({ format, name, operation }) => {
      const result = bench.getTask(name)?.result
      if (result?.state !== "completed") {
        throw new Error(`benchmark task "${name}" did not complete: ${result?.state ?? "missing"}`)
      }
      // `period` is total time over runs: the mean time of one operation, in milliseconds.
      return { operation, format, nsPerOp: result.period * 1e6, marginPercent: result.latency.rme }
    })
    return timed.map((measurement): Measurement => {
      const json = timed.find((other) => other.operation === measurement.operation && other.format === "json")
      const jsonNsPerOp = json?.nsPerOp ?? Number.NaN
      return { ...measurement, opsPerSecond: 1e9 / measurement.nsPerOp, speedVsJson: jsonNsPerOp / measurement.nsPerOp }
    })
  }
)

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 })

/** The measurements as a text table. */
export const formatMeasurements = (measurements: ReadonlyArray<Measurement>): string =>
  alignColumns([
    ["operation", "format", "ops/s", "ns/op", "±", "vs json"],
    ...measurements.map((m) => [
      m.operation,
      m.format,
      integer.format(m.opsPerSecond),
      m.nsPerOp.toFixed(0),
      `${m.marginPercent.toFixed(1)}%`,
      `${m.speedVsJson.toFixed(2)}x`
    ])
  ], 2)

/** Measures the sample record and prints the table. */
export const program = Effect.gen(function*() {
  const jsonBytes = Encodings.json.encode(Encodings.sampleRecord).byteLength
  yield* Console.log(
    `Encoding speed of the sample metadata record (${jsonBytes} bytes of JSON) on Node ${process.version}; ` +
      "compare formats within one run only."
  )
  yield* Console.log(formatMeasurements(yield* measure(Encodings.sampleRecord)))
})
