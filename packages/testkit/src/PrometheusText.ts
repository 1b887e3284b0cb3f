/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for tests
 * that scrape `/metrics`: any line it does not understand is an error, as is a
 * sample without a TYPE, a repeated series, or a histogram whose buckets are not
 * cumulative or do not end in `+Inf` equal to `_count`.
 *
 * Written here because no maintained JavaScript parser exists (the npm ones are
 * unmaintained ports), and a lenient one would hide exactly the mistakes a
 * test of an exporter should catch.
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped"

export interface Sample {
  /** Full sample name (`x_bucket`, `x_sum`, ...). */
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Family {
  readonly name: string
  readonly type: MetricType
  readonly help: string | undefined
  readonly samples: ReadonlyArray<Sample>
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const types = new Set<MetricType>(["counter", "gauge", "histogram", "summary", "untyped"])

const unescapeLabel = (raw: string, line: number): string =>
  raw.replace(/\\(.)/g, (_, c: string) => {
    if (c === "\\") return "\\"
    if (c === "\"") return "\""
    if (c === "n") return "\n"
    throw new Error(`line ${line}: invalid escape \\${c} in a label value`)
  })

const parseValue = (raw: string, line: number): number => {
  if (raw === "+Inf") return Infinity
  if (raw === "-Inf") return -Infinity
  if (raw === "NaN") return NaN
  if (!/^[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?)$/.test(raw)) {
    throw new Error(`line ${line}: invalid value "${raw}"`)
  }
  return Number(raw)
}

const parseLabels = (raw: string, line: number): Record<string, string> => {
  const labels: Record<string, string> = {}
  let rest = raw.trim()
  while (rest.length > 0) {
    const match = /^([^=\s]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,\s*)?/.exec(rest)
    if (match === null) throw new Error(`line ${line}: malformed labels {${raw}}`)
    const [whole, name, value, comma] = match
    if (!labelName.test(name!)) throw new Error(`line ${line}: invalid label name "${name}"`)
    if (name! in labels) throw new Error(`line ${line}: label "${name}" repeated`)
    labels[name!] = unescapeLabel(value!, line)
    rest = rest.slice(whole.length)
    if (comma === undefined && rest.length > 0) throw new Error(`line ${line}: expected "," between labels`)
  }
  return labels
}

/** The family a sample belongs to: histogram and summary samples carry suffixes. */
const familyOf = (sample: string, families: Map<string, { type: MetricType }>): string | undefined => {
  if (families.has(sample)) return sample
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!sample.endsWith(suffix)) continue
    const base = sample.slice(0, -suffix.length)
    const family = families.get(base)
    if (family !== undefined && (family.type === "histogram" || (family.type === "summary" && suffix !== "_bucket"))) {
      return base
    }
  }
  return undefined
}

/** Parses a whole exposition; throws with the line number on the first violation. */
export const parse = (text: string): ReadonlyMap<string, Family> => {
  const families = new Map<
    string,
    { name: string; type: MetricType; help: string | undefined; samples: Array<Sample> }
  >()
  const seriesSeen = new Set<string>()
  const helps = new Map<string, string>()
  const lines = text.split("\n")
  if (lines.at(-1) !== "") throw new Error("the exposition must end with a newline")
  lines.forEach((content, index) => {
    const line = index + 1
    if (content.trim() === "") return
    if (content.startsWith("#")) {
      const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(content)
      if (meta === null) return // any other comment
      const [, keyword, name, rest] = meta
      if (!metricName.test(name!)) throw new Error(`line ${line}: invalid metric name "${name}"`)
      if (keyword === "HELP") {
        if (helps.has(name!)) throw new Error(`line ${line}: second HELP for ${name}`)
        helps.set(name!, rest ?? "")
        const family = families.get(name!)
        if (family !== undefined) family.help = rest ?? ""
        return
      }
      const type = rest?.trim() as MetricType
      if (!types.has(type)) throw new Error(`line ${line}: unknown type "${rest}" for ${name}`)
      if (families.has(name!)) throw new Error(`line ${line}: second TYPE for ${name}`)
      families.set(name!, { name: name!, type, help: helps.get(name!), samples: [] })
      return
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$/.exec(content)
    if (sample === null) throw new Error(`line ${line}: not a sample: ${content}`)
    const [, name, rawLabels, rawValue] = sample
    const base = familyOf(name!, families)
    if (base === undefined) throw new Error(`line ${line}: sample ${name} has no TYPE before it`)
    const labels = parseLabels(rawLabels ?? "", line)
    const series = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (seriesSeen.has(series)) throw new Error(`line ${line}: series repeated: ${content}`)
    seriesSeen.add(series)
    families.get(base)!.samples.push({ name: name!, labels, value: parseValue(rawValue!, line) })
  })
  for (const family of families.values()) if (family.type === "histogram") checkHistogram(family)
  return families
}

const seriesKey = (labels: Readonly<Record<string, string>>, without: string) =>
  JSON.stringify(Object.entries(labels).filter(([k]) => k !== without).sort())

const checkHistogram = (family: Family) => {
  const groups = new Map<string, { buckets: Array<[number, number]>; count?: number; sum?: number }>()
  for (const sample of family.samples) {
    const key = seriesKey(sample.labels, "le")
    const group = groups.get(key) ?? { buckets: [] }
    groups.set(key, group)
    if (sample.name.endsWith("_bucket")) {
      const le = sample.labels.le
      if (le === undefined) throw new Error(`${family.name}: a bucket without "le"`)
      group.buckets.push([le === "+Inf" ? Infinity : Number(le), sample.value])
    } else if (sample.name.endsWith("_count")) group.count = sample.value
    else if (sample.name.endsWith("_sum")) group.sum = sample.value
  }
  for (const [key, group] of groups) {
    const where = `${family.name}${key}`
    if (group.count === undefined || group.sum === undefined) throw new Error(`${where}: _count and _sum are required`)
    const sorted = [...group.buckets].sort(([a], [b]) => a - b)
    if (sorted.at(-1)?.[0] !== Infinity) throw new Error(`${where}: no +Inf bucket`)
    sorted.reduce((previous, [le, value]) => {
      if (value < previous) throw new Error(`${where}: bucket le=${le} (${value}) below the one before (${previous})`)
      return value
    }, 0)
    if (sorted.at(-1)![1] !== group.count) {
      throw new Error(`${where}: +Inf bucket ${sorted.at(-1)![1]} differs from _count ${group.count}`)
    }
  }
}

/** The value of the one sample `name` whose labels include `labels`; undefined when absent, an error when ambiguous. */
export const value = (
  families: ReadonlyMap<string, Family>,
  name: string,
  labels: Readonly<Record<string, string>> = {}
): number | undefined => {
  const matches = [...families.values()].flatMap((family) =>
    family.samples.filter((sample) =>
      sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v)
    )
  )
  if (matches.length > 1) throw new Error(`${name}${JSON.stringify(labels)} matches ${matches.length} series`)
  return matches[0]?.value
}
