/**
 * Discovery through a Consul agent's HTTP API (the local agent of each machine or
 * pod). Each instance is a Consul service with a TTL check that Registration
 * passes; an instance that stops passing turns critical, drops out of
 * `?passing` answers, and is removed by Consul after `deregisterCriticalAfter`.
 * `watch` follows a service with blocking queries, so callers keep a current view
 * without a lookup per request.
 */
import { FetchHttpClient, HttpClient, HttpClientRequest, type HttpClientResponse } from "@effect/platform"
import {
  Config,
  ConfigError,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
  Redacted,
  Schedule,
  Schema,
  type Scope,
  Stream
} from "effect"
import { Discovery, DiscoveryError, type Instance } from "./Discovery.js"

/** `consul.*`: the agent and the registration's timings. */
export interface ConsulConfig {
  /** The agent's HTTP API, `http(s)://host:port` (`host:port` means http). */
  readonly httpAddr: string
  /** ACL token sent with every request, when ACLs are enabled. */
  readonly httpToken: Option.Option<Redacted.Redacted>
  /** An instance that does not pass its check for this long turns critical. */
  readonly checkTtl: Duration.Duration
  /** Consul removes an instance critical for this long (at least 1 minute; 0 = never). */
  readonly deregisterCriticalAfter: Duration.Duration
  /** How long one blocking query waits for a change before asking again. */
  readonly watchWait: Duration.Duration
}

const normalizeAddress = (raw: string): Option.Option<string> => {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`
  try {
    const url = new URL(withScheme)
    if (url.protocol !== "http:" && url.protocol !== "https:") return Option.none()
    if (url.search !== "" || url.hash !== "" || url.username !== "") return Option.none()
    return Option.some(url.href.replace(/\/+$/, ""))
  } catch {
    return Option.none()
  }
}

const within = (name: string, min: Duration.Duration, max: Duration.Duration, message: string) =>
  Config.duration(name).pipe(
    Config.validate({ message, validation: (d) => Duration.between(d, { minimum: min, maximum: max }) })
  )

/** Read from `CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN`, `CONSUL_CHECK_TTL`, `CONSUL_DEREGISTER_CRITICAL_AFTER`, `CONSUL_WATCH_WAIT`. */
export const config: Config.Config<ConsulConfig> = Config.all({
  httpAddr: Config.string("httpAddr").pipe(
    Config.mapOrFail((raw) =>
      Option.match(normalizeAddress(raw.trim()), {
        onNone: () => Either.left(ConfigError.InvalidData([], `Expected an http(s) URL or host:port, got "${raw}"`)),
        onSome: Either.right
      })
    ),
    Config.withDefault("http://127.0.0.1:8500")
  ),
  httpToken: Config.option(Config.redacted("httpToken")),
  checkTtl: within("checkTtl", Duration.seconds(1), Duration.hours(1), "Expected a duration from 1 second to 1 hour")
    .pipe(
      Config.withDefault(Duration.seconds(10))
    ),
  deregisterCriticalAfter: Config.duration("deregisterCriticalAfter").pipe(Config.withDefault(Duration.minutes(1))),
  watchWait: within(
    "watchWait",
    Duration.seconds(1),
    Duration.minutes(5),
    "Expected a duration from 1 second to 5 minutes"
  ).pipe(
    Config.withDefault(Duration.minutes(1))
  )
}).pipe(Config.nested("consul"))

/** Consul reads durations the way Go's time.ParseDuration does. */
const goDuration = (duration: Duration.Duration) => `${Math.max(1, Math.round(Duration.toMillis(duration)))}ms`

const HealthEntries = Schema.Array(Schema.Struct({
  Node: Schema.Struct({ Address: Schema.String }),
  Service: Schema.Struct({ ID: Schema.String, Service: Schema.String, Address: Schema.String, Port: Schema.Number })
}))
const decodeEntries = Schema.decodeUnknown(Schema.parseJson(HealthEntries))

const toInstances = (entries: typeof HealthEntries.Type): ReadonlyArray<Instance> =>
  entries.map((entry) => ({
    id: entry.Service.ID,
    service: entry.Service.Service,
    // An instance registered without an address is reached at its node's.
    host: entry.Service.Address === "" ? entry.Node.Address : entry.Service.Address,
    port: entry.Service.Port
  }))

const sameInstances = (a: ReadonlyArray<Instance>, b: ReadonlyArray<Instance>) => {
  if (a.length !== b.length) return false
  const key = (i: Instance) => `${i.id}@${i.host}:${i.port}`
  const keys = new Set(a.map(key))
  return b.every((i) => keys.has(key(i)))
}

export interface Options {
  /** Upper bound of one agent call other than a blocking query. Default 5 seconds. */
  readonly requestTimeout?: Duration.DurationInput
  /** First delay after a failed watch query; later ones double, with jitter, up to `maxBackoff`. */
  readonly backoff?: Duration.DurationInput
  readonly maxBackoff?: Duration.DurationInput
}

export const make = (
  consul: ConsulConfig,
  options: Options = {}
): Effect.Effect<Discovery["Type"], never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const token = Option.map(consul.httpToken, Redacted.value)
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest((request) => {
        const located = HttpClientRequest.prependUrl(request, consul.httpAddr)
        // In a header, never in the URL: URLs end up in logs and error messages.
        return Option.isSome(token) ? HttpClientRequest.setHeader(located, "X-Consul-Token", token.value) : located
      })
    )
    const requestTimeout = Duration.decode(options.requestTimeout ?? "5 seconds")
    const waitMillis = Duration.toMillis(consul.watchWait)
    // Consul adds up to wait/16 of jitter to a blocking query; the client waits longer than that.
    const blockingTimeout = Duration.millis(waitMillis + waitMillis / 16 + 5000)

    /** Sends `request` and reads the whole answer (which frees the connection), whatever its status. */
    const send = (operation: string, request: HttpClientRequest.HttpClientRequest, timeout: Duration.Duration) =>
      client.execute(request).pipe(
        Effect.flatMap((response) => Effect.map(response.text, (body) => ({ response, body }))),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => `no answer from the Consul agent within ${Duration.format(timeout)}`
        }),
        Effect.mapError((cause) =>
          new DiscoveryError({ operation, cause: typeof cause === "string" ? cause : cause.message })
        )
      )
    const refused = (
      operation: string,
      answer: { readonly response: HttpClientResponse.HttpClientResponse; readonly body: string }
    ) => new DiscoveryError({ operation, cause: `Consul answered ${answer.response.status}: ${answer.body.trim()}` })
    const expectOk =
      (operation: string) =>
      (answer: { readonly response: HttpClientResponse.HttpClientResponse; readonly body: string }) =>
        answer.response.status === 200 ? Effect.succeed(answer) : Effect.fail(refused(operation, answer))
    const put = (operation: string, path: string, body?: unknown) =>
      send(
        operation,
        body === undefined
          ? HttpClientRequest.put(path)
          : HttpClientRequest.bodyUnsafeJson(HttpClientRequest.put(path), body),
        requestTimeout
      )

    const checkId = (instanceId: string) => `service:${instanceId}`
    const deregisterAfter = Duration.toMillis(consul.deregisterCriticalAfter)

    const query = (service: string, index: number) => {
      const request = HttpClientRequest.get(`/v1/health/service/${encodeURIComponent(service)}`).pipe(
        HttpClientRequest.setUrlParam("passing", "true"),
        index > 0
          ? HttpClientRequest.setUrlParams({ index: String(index), wait: goDuration(consul.watchWait) })
          : (r) => r
      )
      return send("healthy", request, index > 0 ? blockingTimeout : requestTimeout).pipe(
        Effect.flatMap(expectOk("healthy")),
        Effect.flatMap(({ body, response }) =>
          decodeEntries(body).pipe(
            Effect.mapError((error) =>
              new DiscoveryError({ operation: "healthy", cause: `unexpected answer from Consul: ${error.message}` })
            ),
            Effect.map((entries) => ({ instances: toInstances(entries), index: consulIndex(response) }))
          )
        )
      )
    }

    const backoff = Schedule.exponential(options.backoff ?? "200 millis").pipe(
      Schedule.jittered,
      Schedule.either(Schedule.spaced(options.maxBackoff ?? "10 seconds"))
    )

    const watch = (service: string): Stream.Stream<ReadonlyArray<Instance>> =>
      Stream.suspend(() => {
        // 0 asks at once; after an answer, the next query blocks until the index moves past it.
        let index = 0
        let failures = 0
        const next = Effect.suspend(() => query(service, index)).pipe(
          Effect.tap((answer) =>
            Effect.gen(function*() {
              // Consul's rules for blocking clients: an index that goes backwards (a
              // restored snapshot, another server) restarts the loop; an index that is
              // not positive would make every query return at once.
              index = answer.index < index ? 0 : Math.max(answer.index, 1)
              if (failures > 0) yield* Effect.logInfo("discovery watch recovered")
              failures = 0
            })
          ),
          Effect.tapError((error) =>
            Effect.suspend(() => {
              index = 0
              failures += 1
              return Effect.logWarning("discovery watch failed; keeping the last view and retrying", error).pipe(
                Effect.annotateLogs("attempt", failures)
              )
            })
          ),
          Effect.retry(backoff),
          Effect.orDie,
          Effect.annotateLogs("service", service)
        )
        return Stream.repeatEffect(next).pipe(
          Stream.map((answer) => answer.instances),
          Stream.changesWith(sameInstances)
        )
      })

    return Discovery.of({
      listedBy: "instances",
      ttl: consul.checkTtl,
      register: (instance) =>
        put("register", "/v1/agent/service/register", {
          ID: instance.id,
          Name: instance.service,
          Address: instance.host,
          Port: instance.port,
          Check: {
            CheckID: checkId(instance.id),
            TTL: goDuration(consul.checkTtl),
            // Registration happens once the instance serves, so it starts passing
            // instead of Consul's default critical.
            Status: "passing",
            ...(deregisterAfter > 0
              ? { DeregisterCriticalServiceAfter: goDuration(consul.deregisterCriticalAfter) }
              : {})
          }
        }).pipe(Effect.flatMap(expectOk("register")), Effect.asVoid),
      deregister: (instanceId) =>
        put("deregister", `/v1/agent/service/deregister/${encodeURIComponent(instanceId)}`).pipe(
          Effect.flatMap((answer) =>
            // 404: already gone (Consul removed it after it was critical too long): the goal is met.
            answer.response.status === 200 || answer.response.status === 404
              ? Effect.void
              : Effect.fail(refused("deregister", answer))
          )
        ),
      reportHealthy: (instanceId) =>
        put("reportHealthy", `/v1/agent/check/pass/${encodeURIComponent(checkId(instanceId))}`).pipe(
          Effect.flatMap(expectOk("reportHealthy")),
          Effect.asVoid
        ),
      healthy: (service) => Effect.map(query(service, 0), (answer) => answer.instances),
      watch
    })
  })

const consulIndex = (response: HttpClientResponse.HttpClientResponse): number => {
  const parsed = Number(response.headers["x-consul-index"])
  return Number.isFinite(parsed) ? parsed : 0
}

export const layer = (
  consul: ConsulConfig,
  options: Options = {}
): Layer.Layer<Discovery, never, HttpClient.HttpClient> => Layer.scoped(Discovery, make(consul, options))

/**
 * The adapter as `consul.*` configures it, over Node's built-in `fetch`: a
 * service that uses Consul loads no HTTP client library of its own (an undici
 * client would be loaded at every start, Consul or not, once bundled with the
 * HTTP server that imports it).
 */
export const layerConfig: Layer.Layer<Discovery, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(config, (consul) => layer(consul))
).pipe(
  Layer.provide(FetchHttpClient.layer)
)
