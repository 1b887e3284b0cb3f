/**
 * Configuration: environment variables over an optional YAML file. Keys are nested
 * camelCase (`server.grpcPort`); the environment spells them CONSTANT_CASE
 * (`SERVER_GRPC_PORT`), the YAML file in their natural nested shape. The file is
 * named by `CONFIG_FILE`.
 */
import { FileSystem } from "@effect/platform"
import {
  Config,
  ConfigError,
  ConfigProvider,
  Data,
  Duration,
  Effect,
  Either,
  Layer,
  LogLevel,
  Option,
  Schema
} from "effect"
import * as os from "node:os"

const YamlDocument = Schema.Record({ key: Schema.String, value: Schema.Unknown })

export class ConfigFileError extends Schema.TaggedError<ConfigFileError>()("ConfigFileError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `cannot read config file ${this.path}: ${this.reason}`
  }
}

/** Installs the provider: environment first, then the YAML file when `CONFIG_FILE` is set. */
export const layerProvider: Layer.Layer<never, ConfigFileError, FileSystem.FileSystem> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const env = ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase)
    const file = yield* Config.option(Config.string("CONFIG_FILE")).pipe(
      Effect.withConfigProvider(ConfigProvider.fromEnv()),
      Effect.orDie
    )
    if (Option.isNone(file)) return Layer.setConfigProvider(env)
    const fs = yield* FileSystem.FileSystem
    const fail = (reason: unknown) => new ConfigFileError({ path: file.value, reason: String(reason) })
    const text = yield* fs.readFileString(file.value).pipe(Effect.mapError(fail))
    // Loaded only for a service that has a config file. yaml is CommonJS: its
    // module.exports is the default export, in Node.js as in the bundles.
    const YAML = (yield* Effect.promise(() => import("yaml"))).default
    const document = yield* Effect.try({ try: () => YAML.parse(text) ?? {}, catch: fail }).pipe(
      Effect.flatMap(Schema.decodeUnknown(YamlDocument)),
      Effect.mapError(fail)
    )
    return Layer.setConfigProvider(ConfigProvider.orElse(env, () => ConfigProvider.fromJson(document)))
  })
)

/** `["server", "grpcPort"]` or `["SERVER", "GRPC_PORT"]` as the variable an operator sets: `SERVER_GRPC_PORT`. */
export const environmentName = (path: ReadonlyArray<string>): string =>
  path.map((segment) => segment.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()).join("_")

/** The same path as a key of the config file: `server.grpcPort`. */
export const fileKey = (path: ReadonlyArray<string>): string =>
  path.map((segment) =>
    segment.includes("_") || segment === segment.toUpperCase()
      ? segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())
      : segment
  ).join(".")

/**
 * Settings a process cannot start with, each named as the environment variable
 * (and config file key) to fix. Effect's own rendering names them by their
 * nested path (`SERVER.GRPC_PORT`, `kafka.concurrency`), which is neither.
 */
export class ConfigurationError
  extends Data.TaggedError("ConfigurationError")<{ readonly problems: ReadonlyArray<string> }>
{
  constructor(args: { readonly problems: ReadonlyArray<string> }) {
    super(args)
    // Where in our code the error was built says nothing to the operator reading it.
    this.stack = `${this.name}: ${this.message}`
  }

  static fromConfigError(error: ConfigError.ConfigError): ConfigurationError {
    const named = (path: ReadonlyArray<string>) =>
      path.length === 0 ? "a setting" : `${environmentName(path)} (${fileKey(path)} in CONFIG_FILE)`
    const problems = ConfigError.reduceWithContext(error, undefined, {
      andCase: (_, left: ReadonlyArray<string>, right: ReadonlyArray<string>) => [...left, ...right],
      // The environment and the file were both tried: they usually report the same problem.
      orCase: (_, left: ReadonlyArray<string>, right: ReadonlyArray<string>) => [...left, ...right],
      invalidDataCase: (_, path, message) => [`${named(path)}: ${message}`],
      missingDataCase: (_, path) => [`${named(path)} is required and not set`],
      sourceUnavailableCase: (_, path, message) => [`${named(path)}: ${message}`],
      unsupportedCase: (_, path, message) => [`${named(path)}: ${message}`]
    })
    return new ConfigurationError({ problems: [...new Set(problems)] })
  }

  override get message() {
    return `invalid configuration: ${this.problems.join("; ")}`
  }
}

/** The settings that place a server's listeners, as an operator writes them: named when a listener cannot bind. */
export interface ServerSettings {
  readonly host: string
  readonly grpcPort: string
  readonly httpPort: string
  readonly rpcPort: string
}

/** `SERVER_HOST`, `SERVER_GRPC_PORT`, `SERVER_HTTP_PORT`, `SERVER_RPC_PORT`: those of {@link server}. */
export const serverSettings: ServerSettings = {
  host: environmentName(["server", "host"]),
  grpcPort: environmentName(["server", "grpcPort"]),
  httpPort: environmentName(["server", "httpPort"]),
  rpcPort: environmentName(["server", "rpcPort"])
}

/** Where a service listens and how it presents itself to others. */
export interface ServerConfig {
  readonly host: string
  readonly grpcPort: number
  readonly httpPort: number
  /** The Effect RPC listener's port, for a service that serves Effect RPC. */
  readonly rpcPort?: number
  /** The host others should dial; derived from the machine's addresses when unset. */
  readonly advertiseHost: string
  /**
   * The port others should dial when it differs from the bound one (NAT, port
   * mapping): the Effect RPC port, or the HTTP port of a service without one.
   */
  readonly advertisePort?: number
  /** How long a graceful stop waits for in-flight calls. */
  readonly shutdownTimeout: Duration.Duration
  /** How often the readiness checks (database, broker) run; gRPC health follows them. 5 s when absent. */
  readonly healthCheckInterval?: Duration.Duration
  /** How long one readiness check may take before it counts as failed. 2 s when absent. */
  readonly healthCheckTimeout?: Duration.Duration
  /**
   * The largest request a client may send to the gRPC and HTTP JSON edges, in
   * bytes: a gRPC message (larger: RESOURCE_EXHAUSTED), an HTTP body (larger:
   * 413). {@link DEFAULT_MAX_REQUEST_BYTES} when absent.
   */
  readonly maxRequestBytes?: number
  /**
   * The largest Effect RPC message a peer may send, in bytes; a peer that sends
   * a larger one is disconnected. {@link DEFAULT_MAX_RPC_MESSAGE_BYTES} when absent.
   */
  readonly maxRpcMessageBytes?: number
  /** The settings that set `host` and the ports, for messages; {@link serverSettings} when absent. */
  readonly settings?: ServerSettings
  /** TLS on every listener (and the identity of the service's own Effect RPC calls); plaintext when absent. */
  readonly tls?: TlsSettings | undefined
}

/**
 * `server.tls.*`: a certificate and its key (PEM files) serve TLS on every
 * listener; with a CA, the Effect RPC listener (`clientAuth: "rpc"`, the
 * default) or every listener (`"all"`) admits only clients presenting a
 * certificate that CA signed, and the service's own Effect RPC calls present its
 * certificate and accept only servers the CA signed. The files are read again
 * every `reloadInterval`: a renewed certificate serves new connections without a
 * restart.
 */
export interface TlsSettings {
  readonly certFile: string
  readonly keyFile: string
  readonly caFile?: string | undefined
  readonly clientAuth: "rpc" | "all"
  readonly reloadInterval: Duration.Duration
}

/** How often certificate files are read again when `SERVER_TLS_RELOAD_INTERVAL` is not set. */
export const DEFAULT_TLS_RELOAD_INTERVAL = Duration.seconds(10)

/** `SERVER_TLS_CERT_FILE` and the rest: the variables of {@link TlsSettings}, for messages. */
export const tlsSettings = {
  certFile: environmentName(["server", "tls", "certFile"]),
  keyFile: environmentName(["server", "tls", "keyFile"]),
  caFile: environmentName(["server", "tls", "caFile"])
} as const

/** `tls.*` (under `server`: `SERVER_TLS_*`), see {@link TlsSettings}; undefined when no file is named. */
export const tls: Config.Config<TlsSettings | undefined> = Config.all({
  certFile: Config.nonEmptyString("certFile").pipe(Config.option),
  keyFile: Config.nonEmptyString("keyFile").pipe(Config.option),
  caFile: Config.nonEmptyString("caFile").pipe(Config.option),
  clientAuth: Config.literal("rpc", "all")("clientAuth").pipe(Config.withDefault("rpc" as const)),
  reloadInterval: Config.duration("reloadInterval").pipe(
    Config.validate({ message: "Expected a positive duration", validation: (d) => Duration.toMillis(d) > 0 }),
    Config.withDefault(DEFAULT_TLS_RELOAD_INTERVAL)
  )
}).pipe(
  Config.mapOrFail(({ caFile, certFile, keyFile, ...rest }) => {
    if (Option.isNone(certFile) && Option.isNone(keyFile)) {
      return Option.isSome(caFile)
        ? Either.left(
          ConfigError.InvalidData(["caFile"], `needs ${tlsSettings.certFile} and ${tlsSettings.keyFile} too`)
        )
        : Either.right(undefined)
    }
    if (Option.isNone(keyFile)) {
      return Either.left(ConfigError.InvalidData(["keyFile"], `must be set with ${tlsSettings.certFile}`))
    }
    if (Option.isNone(certFile)) {
      return Either.left(ConfigError.InvalidData(["certFile"], `must be set with ${tlsSettings.keyFile}`))
    }
    return Either.right({
      certFile: certFile.value,
      keyFile: keyFile.value,
      ...(Option.isSome(caFile) ? { caFile: caFile.value } : {}),
      ...rest
    })
  }),
  Config.nested("tls")
)

/**
 * 64 KiB: the largest request of the APIs, a movie's metadata, holds at most
 * 4,736 UTF-16 units: 14 KB in UTF-8 (3 bytes a unit at most), 28 KB as JSON
 * with every one escaped (6 bytes).
 */
export const DEFAULT_MAX_REQUEST_BYTES = 64 * 1024

/**
 * 4 MiB: the largest Effect RPC message is a batch of rating events from the
 * ingestor; at its default 500 events a batch takes about 50 KB, and at most
 * 0.7 MB with every id 128 characters long.
 */
export const DEFAULT_MAX_RPC_MESSAGE_BYTES = 4 * 1024 * 1024

const isWildcard = (host: string) => host === "0.0.0.0" || host === "::" || host === "[::]"

/** A TCP port; 0 asks the system for a free one (Config.port refuses 0). */
const port = (name: string) =>
  Config.integer(name).pipe(
    Config.validate({ message: "Expected a port number from 0 to 65535", validation: (n) => n >= 0 && n <= 65535 })
  )

/** A size in bytes: 1 to 2^31 - 1 (gRPC's limits are 32-bit integers). */
const bytes = (name: string) =>
  Config.integer(name).pipe(
    Config.validate({
      message: "Expected a number of bytes from 1 to 2147483647",
      validation: (n) => n >= 1 && n <= 2 ** 31 - 1
    })
  )

/** `server.*`: the defaults differ per service, so they are parameters. */
export const server = (
  defaults: { readonly grpcPort: number; readonly httpPort: number; readonly rpcPort?: number }
): Config.Config<ServerConfig> =>
  Config.all({
    host: Config.string("host").pipe(Config.withDefault("0.0.0.0")),
    grpcPort: port("grpcPort").pipe(Config.withDefault(defaults.grpcPort)),
    httpPort: port("httpPort").pipe(Config.withDefault(defaults.httpPort)),
    rpcPort: defaults.rpcPort === undefined
      ? Config.succeed(undefined)
      : port("rpcPort").pipe(Config.withDefault(defaults.rpcPort)),
    advertiseHost: Config.string("advertiseHost").pipe(
      Config.validate({
        message: "Expected an address others can dial, not a wildcard",
        validation: (h) => !isWildcard(h.trim())
      }),
      Config.option
    ),
    advertisePort: Config.port("advertisePort").pipe(Config.option),
    shutdownTimeout: Config.duration("shutdownTimeout").pipe(Config.withDefault(Duration.seconds(10))),
    healthCheckInterval: Config.duration("healthCheckInterval").pipe(Config.withDefault(Duration.seconds(5))),
    healthCheckTimeout: Config.duration("healthCheckTimeout").pipe(Config.withDefault(Duration.seconds(2))),
    maxRequestBytes: bytes("maxRequestBytes").pipe(Config.withDefault(DEFAULT_MAX_REQUEST_BYTES)),
    maxRpcMessageBytes: bytes("maxRpcMessageBytes").pipe(Config.withDefault(DEFAULT_MAX_RPC_MESSAGE_BYTES)),
    tls
  }).pipe(
    Config.map(({ advertiseHost, advertisePort, rpcPort, tls, ...rest }): ServerConfig => ({
      ...rest,
      ...(tls === undefined ? {} : { tls }),
      ...(rpcPort === undefined ? {} : { rpcPort }),
      advertiseHost: Option.getOrElse(advertiseHost, () => defaultAdvertiseHost(rest.host)),
      ...Option.match(advertisePort, { onNone: () => ({}), onSome: (port) => ({ advertisePort: port }) })
    })),
    Config.nested("server")
  )

/**
 * A wildcard bind address cannot be dialled; advertise the first external IPv4
 * address instead (a pod's IP in Kubernetes), never `localhost`.
 */
export const defaultAdvertiseHost = (bindHost: string): string => {
  if (!isWildcard(bindHost)) return bindHost
  const external = Object.values(os.networkInterfaces())
    .flatMap((addresses) => addresses ?? [])
    .find((address) => address.family === "IPv4" && !address.internal)
  return external?.address ?? os.hostname()
}

export interface LogConfig {
  readonly level: LogLevel.LogLevel
}

/** `log.level`: all, trace, debug, info, warn, error, fatal or off (Effect's labels, any case). */
export const log: Config.Config<LogConfig> = Config.all({
  level: Config.logLevel("level").pipe(Config.withDefault(LogLevel.Info))
}).pipe(Config.nested("log"))
