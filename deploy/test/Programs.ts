/**
 * The settings each movieapp service reads, taken from its own code: its `*Config`
 * (and the configs its composition root reads besides, such as `Mysql.config`)
 * evaluated against a provider that records every variable asked for, in the
 * environment's CONSTANT_CASE spelling. The deployment files are checked against
 * this, so a key the code does not read, a missing required key or an invalid
 * value fails a test.
 */
import { MetadataConfig } from "@movieapp/metadata/MetadataConfig"
import { MovieConfig } from "@movieapp/movie/MovieConfig"
import type { ServerConfig } from "@movieapp/platform/Config"
import * as Mysql from "@movieapp/platform/Mysql"
import { RatingConfig } from "@movieapp/rating/RatingConfig"
import { type Config, ConfigError, ConfigProvider, ConfigProviderPathPatch, Effect, Either, HashSet } from "effect"

export interface Evaluation<A> {
  /** Every variable the config asked for, whether present or not. */
  readonly read: ReadonlySet<string>
  readonly result: Either.Either<A, ConfigError.ConfigError>
}

/** Evaluates `config` on `env` as a service would (environment, CONSTANT_CASE), recording what it reads. */
export const evaluate = <A>(config: Config.Config<A>, env: Readonly<Record<string, string>>): Evaluation<A> => {
  const read = new Set<string>()
  const flat = ConfigProvider.makeFlat({
    load: (path, primitive) => {
      const name = path.join("_")
      read.add(name)
      const text = env[name]
      return text === undefined
        ? Effect.fail(ConfigError.MissingData([...path], `Expected ${name} to exist in the environment`))
        : Effect.mapBoth(primitive.parse(text), { onFailure: ConfigError.prefixed([...path]), onSuccess: (value) => [value] })
    },
    enumerateChildren: () => Effect.succeed(HashSet.empty()),
    patch: ConfigProviderPathPatch.empty
  })
  const provider = ConfigProvider.fromFlat(flat).pipe(ConfigProvider.constantCase)
  return { read, result: Effect.runSync(Effect.either(provider.load(config))) }
}

/** A service as its composition root configures it. */
export interface Service {
  readonly config: Config.Config<{ readonly server: ServerConfig }>
  /** The other configs main.ts reads, given the service's own settings. */
  readonly parts: (settings: any) => ReadonlyArray<Config.Config<unknown>>
  /** Every config main.ts may read (for the set of keys the service can read). */
  readonly everyPart: ReadonlyArray<Config.Config<unknown>>
}

/**
 * Mirrors each `packages/<service>/src/main.ts`: when main.ts starts reading a
 * config (Kafka settings when `INGESTION=kafka`, Consul's when `DISCOVERY=consul`,
 * tracing), add it here.
 */
export const services: Readonly<Record<"metadata" | "rating" | "movie", Service>> = {
  metadata: {
    config: MetadataConfig,
    parts: (settings: typeof MetadataConfig extends Config.Config<infer A> ? A : never) =>
      settings.repository === "mysql" ? [Mysql.config] : [],
    everyPart: [Mysql.config]
  },
  rating: {
    config: RatingConfig,
    parts: (settings: typeof RatingConfig extends Config.Config<infer A> ? A : never) =>
      settings.repository === "mysql" ? [Mysql.config] : [],
    everyPart: [Mysql.config]
  },
  movie: {
    config: MovieConfig,
    parts: () => [],
    everyPart: []
  }
}

export type ServiceName = keyof typeof services

export const isService = (name: string): name is ServiceName => Object.hasOwn(services, name)

/** Every variable `service` can read. */
export const readable = (service: ServiceName): ReadonlySet<string> => {
  const { config, everyPart } = services[service]
  return new Set([config, ...everyPart].flatMap((c) => [...evaluate(c, {}).read]))
}

export interface Check {
  /** Keys in the environment that the service never reads. */
  readonly unread: ReadonlyArray<string>
  /** Why the service would not start with this environment (missing or invalid keys). */
  readonly errors: ReadonlyArray<string>
  /** The server settings it would run with, when it would start. */
  readonly server: ServerConfig | undefined
}

/** What `service` makes of `env`: the keys it ignores, and whether its configuration holds. */
export const check = (service: ServiceName, env: Readonly<Record<string, string>>): Check => {
  const unread = Object.keys(env).filter((key) => !readable(service).has(key)).sort()
  const main = evaluate(services[service].config, env)
  if (Either.isLeft(main.result)) return { unread, errors: [String(main.result.left)], server: undefined }
  const errors = services[service].parts(main.result.right).flatMap((part) => {
    const { result } = evaluate(part, env)
    return Either.isLeft(result) ? [String(result.left)] : []
  })
  return { unread, errors, server: main.result.right.server }
}
