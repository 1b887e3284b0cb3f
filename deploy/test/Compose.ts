/**
 * deploy/compose.yaml as Docker Compose reads it (YAML merge keys resolved),
 * and its validation against the Compose Specification's JSON schema
 * (deploy/test/compose-spec.json, from compose-spec/compose-spec, schema/
 * compose-spec.json at a08f8d5, Apache-2.0).
 */
import Ajv from "ajv"
import draft07 from "ajv/dist/refs/json-schema-draft-07.json" with { type: "json" }
import * as fs from "node:fs"
import * as path from "node:path"
import * as YAML from "yaml"
import { repo } from "./Dockerfile.js"

export const composePath = path.join(repo, "deploy/compose.yaml")

export interface ComposeFile {
  readonly name?: string
  readonly services: Readonly<Record<string, any>>
  readonly volumes?: Readonly<Record<string, unknown>>
  readonly [key: string]: unknown
}

export const read = (file: string = composePath): ComposeFile => YAML.parse(fs.readFileSync(file, "utf8"), { merge: true })

const schema = JSON.parse(fs.readFileSync(path.join(repo, "deploy/test/compose-spec.json"), "utf8"))
const ajv = new Ajv.default({ allErrors: true, strict: false })
// The spec names its meta-schema by the https spelling of draft-07's id.
ajv.addMetaSchema({ ...draft07, $id: "https://json-schema.org/draft-07/schema" })
const validator = ajv.compile(schema)

/** Schema violations as `path: message`, none when valid. */
export const validate = (document: unknown): ReadonlyArray<string> =>
  validator(document) ? [] : (validator.errors ?? []).map((e) => `${e.instancePath || "/"}: ${e.message}${e.params && "additionalProperty" in e.params ? ` (${e.params.additionalProperty})` : ""}`)

/** A service's environment as a map (Compose also takes a list of KEY=value). */
export const environment = (service: any): Readonly<Record<string, string>> => {
  const env = service.environment ?? {}
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((entry: string) => {
      const i = entry.indexOf("=")
      return [entry.slice(0, i), entry.slice(i + 1)]
    }))
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? "" : String(v)]))
}

/** A Compose duration (`1m30s`, `15s`, `500ms`) in seconds. */
export const seconds = (duration: string): number => {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 0.000001 }
  let total = 0
  for (const match of duration.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)) total += Number(match[1]) * units[match[2]!]!
  return total
}

/**
 * The hosts a service's settings name: values of `*_HOST`, `*_URL`, `*_ADDR`,
 * `*_ENDPOINT` and `*_BROKERS` (URLs, or comma-separated `host[:port]`).
 */
export const referencedHosts = (env: Readonly<Record<string, string>>): ReadonlyArray<{ readonly key: string; readonly host: string; readonly port: string | undefined }> =>
  Object.entries(env)
    .filter(([key]) => /_(HOST|URL|ADDR|ENDPOINT|BROKERS)$/.test(key))
    .flatMap(([key, value]) =>
      value.split(",").map((part) => {
        const text = part.trim()
        if (/^[a-z]+:\/\//.test(text)) {
          const url = new URL(text)
          return { key, host: url.hostname, port: url.port || undefined }
        }
        const [host, port] = text.split(":")
        return { key, host: host!, port }
      }))
