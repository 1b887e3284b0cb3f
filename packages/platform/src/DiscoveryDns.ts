/**
 * Discovery through names the platform keeps (`DISCOVERY=dns`). Each service this
 * process calls is configured as `host:port`; the host is resolved the way the
 * system resolves names for any program (`getaddrinfo`: `/etc/hosts`, then DNS
 * with resolv.conf's search domains and options), to every address it has (A and
 * AAAA), and resolved again every `refreshInterval`; each address is one instance
 * at the configured port. A Kubernetes headless Service answers with the
 * addresses of its ready pods, so readiness decides who is listed and nothing
 * registers here (`listedBy: "platform"`). An address (`127.0.0.1:8071`,
 * `[::1]:8071`) is its own single instance.
 */
import { Config, ConfigError, Duration, Effect, Either, Layer, Schedule, Stream } from "effect"
import { promises as dns } from "node:dns"
import { isIP } from "node:net"
import { Discovery, DiscoveryError, type Instance } from "./Discovery.js"
import * as RpcTransport from "./RpcTransport.js"

/** Where a service is found: a name (or an address) and the port of its Effect RPC endpoint. */
export type Address = RpcTransport.Address

export interface DnsConfig {
  /** The services this process calls, by service name. */
  readonly addresses: ReadonlyMap<string, Address>
  /** How often each name is resolved again. */
  readonly refreshInterval: Duration.Duration
}

/** `host:port`, `address:port` or `[IPv6 address]:port`, as RpcTransport reads addresses. */
export const parseAddress = (raw: string): Either.Either<Address, string> => {
  const parsed = RpcTransport.parseAddress(raw)
  return parsed === undefined
    ? Either.left(
      `Expected host:port (e.g. metadata.movieapp.svc.cluster.local:8071, 127.0.0.1:8071 or [::1]:8071), got "${raw}"`
    )
    : Either.right(parsed)
}

const address = (name: string) =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) => Either.mapLeft(parseAddress(raw), (message) => ConfigError.InvalidData([], message)))
  )

/**
 * `<SERVICE>_ADDRESS` for each of `services` (`METADATA_ADDRESS`, required), and
 * `DNS_REFRESH_INTERVAL` (100 milliseconds to 1 hour, default 5 seconds).
 */
export const config = (services: ReadonlyArray<string>): Config.Config<DnsConfig> =>
  Config.all({
    addresses: Config.all(
      services.map((service) => Config.map(Config.nested(address("address"), service), (a) => [service, a] as const))
    ),
    refreshInterval: Config.duration("refreshInterval").pipe(
      Config.validate({
        message: "Expected a duration from 100 millis to 1 hour",
        validation: (d) => Duration.between(d, { minimum: Duration.millis(100), maximum: Duration.hours(1) })
      }),
      Config.withDefault(Duration.seconds(5)),
      Config.nested("dns")
    )
  }).pipe(
    Config.map(({ addresses, refreshInterval }): DnsConfig => ({ addresses: new Map(addresses), refreshInterval }))
  )

/** Every address of `hostname` (`dns.lookup` with `all: true`); fails as `dns.lookup` does. */
export type Lookup = (hostname: string) => Promise<ReadonlyArray<{ readonly address: string; readonly family: number }>>

/** The system resolver, as every other program on the machine resolves names. */
export const systemLookup: Lookup = (hostname) => dns.lookup(hostname, { all: true })

export interface Options {
  /**
   * How names are resolved. Default `systemLookup`. Tests pass a resolver that
   * asks their own DNS server: the system resolver only asks the servers of
   * `/etc/resolv.conf`, on port 53.
   */
  readonly lookup?: Lookup
  /** First delay after a failed lookup; later ones double, with jitter, up to `refreshInterval`. Default 200 ms. */
  readonly backoff?: Duration.DurationInput
}

/** The name does not exist, or has no address: it lists no instance (a headless Service without ready pods). */
const NO_ADDRESS = new Set(["ENOTFOUND", "ENODATA"])

const sameInstances = (a: ReadonlyArray<Instance>, b: ReadonlyArray<Instance>) =>
  a.length === b.length && a.every((instance, i) => instance.id === b[i]!.id)

export const make = (dnsConfig: DnsConfig, options: Options = {}): Effect.Effect<Discovery["Type"]> =>
  Effect.sync(() => {
    const lookup = options.lookup ?? systemLookup
    const backoff = Schedule.exponential(options.backoff ?? "200 millis").pipe(
      Schedule.jittered,
      Schedule.either(Schedule.spaced(dnsConfig.refreshInterval))
    )

    /** The instances `service` has now, sorted so that equal sets compare equal. */
    const resolve = (service: string): Effect.Effect<ReadonlyArray<Instance>, DiscoveryError> =>
      Effect.suspend(() => {
        const configured = dnsConfig.addresses.get(service)
        if (configured === undefined) return Effect.succeed([])
        const { host, port } = configured
        const instances = (addresses: ReadonlyArray<string>): ReadonlyArray<Instance> =>
          [...new Set(addresses)].sort().map((address) => ({
            id: `${service}-${address.includes(":") ? `[${address}]` : address}:${port}`,
            service,
            host: address,
            port
          }))
        if (isIP(host) !== 0) return Effect.succeed(instances([host]))
        return Effect.tryPromise({ try: () => lookup(host), catch: (cause) => cause }).pipe(
          Effect.map((found) => instances(found.map((a) => a.address))),
          Effect.catchAll((cause) => {
            const code = typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : ""
            return NO_ADDRESS.has(code)
              ? Effect.succeed(instances([]))
              : Effect.fail(
                new DiscoveryError({
                  operation: "healthy",
                  cause: `cannot resolve ${host}: ${cause instanceof Error ? cause.message : String(cause)}`
                })
              )
          })
        )
      })

    const watch = (service: string): Stream.Stream<ReadonlyArray<Instance>> =>
      Stream.suspend(() => {
        let failures = 0
        const next = resolve(service).pipe(
          Effect.tap(() =>
            Effect.suspend(() => {
              const recovered = failures > 0
              failures = 0
              return recovered ? Effect.logInfo("discovery lookup recovered") : Effect.void
            })
          ),
          Effect.tapError((error) =>
            Effect.suspend(() => {
              failures += 1
              return Effect.logWarning("discovery lookup failed; keeping the last view and retrying", error).pipe(
                Effect.annotateLogs("attempt", failures)
              )
            })
          ),
          Effect.retry(backoff),
          Effect.orDie,
          Effect.annotateLogs({ service, address: dnsConfig.addresses.get(service)?.host ?? "(not configured)" })
        )
        return Stream.repeatEffectWithSchedule(next, Schedule.spaced(dnsConfig.refreshInterval)).pipe(
          Stream.changesWith(sameInstances),
          Stream.tap((instances) =>
            instances.length === 0 && dnsConfig.addresses.has(service)
              ? Effect.logWarning("no instance: the name resolves to no address").pipe(
                Effect.annotateLogs({ service, address: dnsConfig.addresses.get(service)!.host })
              )
              : Effect.void
          )
        )
      })

    return Discovery.of({
      listedBy: "platform",
      ttl: Duration.infinity,
      register: () => Effect.void,
      deregister: () => Effect.void,
      reportHealthy: () => Effect.void,
      healthy: resolve,
      watch
    })
  })

export const layer = (dnsConfig: DnsConfig, options: Options = {}): Layer.Layer<Discovery> =>
  Layer.effect(Discovery, make(dnsConfig, options))
