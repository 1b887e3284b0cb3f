/**
 * The Compose files as Docker Compose itself reads them (`docker compose config`:
 * validated, interpolated, merged, normalised), and Compose projects run from them.
 */
import { Effect } from "effect"
import * as path from "node:path"
import * as Docker from "./Docker.js"
import { repo } from "./Repo.js"

/** The whole system, as a user with an image registry runs it. */
export const full = ["deploy/compose.yaml"] as const
/** The movieapp programs on the host's network, with the infrastructure on the host: these machines (no registry, no bridge). */
export const onHost = ["deploy/compose.yaml", "deploy/compose.host.yaml"] as const
/** Each Compose file as it is used: alone, or as an override. */
export const configurations: ReadonlyArray<ReadonlyArray<string>> = [full, onHost]

/** The services of the normalised model (fields as `docker compose config --format json` writes them). */
export interface Model {
  readonly name: string
  readonly services: Readonly<Record<string, any>>
  readonly volumes?: Readonly<Record<string, unknown>>
  readonly [key: string]: unknown
}

const fileArgs = (files: ReadonlyArray<string>) => files.flatMap((file) => ["--file", path.join(repo, file)])

/** `docker compose --file … <args>`, with `env` for interpolation; its standard output. */
export const compose = (
  files: ReadonlyArray<string>,
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {}
) => Docker.run(["compose", ...fileArgs(files), ...args], { env })

/** The model Compose makes of `files` (failing as `docker compose config` fails), with `env` for interpolation. */
export const config = (
  files: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {}
): Effect.Effect<Model, Docker.DockerError> =>
  Effect.map(compose(files, ["config", "--format", "json"], env), (json) => JSON.parse(json) as Model)

/** A service's environment (null values, variables passed through unset, as empty strings). */
export const environment = (service: any): Readonly<Record<string, string>> =>
  Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, v === null ? "" : String(v)]))

/** A Compose duration as normalised (`1m30s`, `15s`, `500ms`) in seconds. */
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
export const referencedHosts = (
  env: Readonly<Record<string, string>>
): ReadonlyArray<{ readonly key: string; readonly host: string; readonly port: string | undefined }> =>
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
      })
    )

/** A container of a project, as `docker compose ps --all --format json` lists it. */
export interface ProjectContainer {
  readonly ID: string
  readonly Name: string
  readonly Service: string
  readonly State: string
  readonly Health: string
  readonly ExitCode: number
}

/** The containers of a project, stopped ones included (Compose writes one JSON object a line). */
export const containers = (files: ReadonlyArray<string>, project: string) =>
  Effect.map(
    compose(files, ["--project-name", project, "ps", "--all", "--format", "json"]),
    (out) => out.split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line) as ProjectContainer)
  )
