/**
 * Service discovery port: instances are listed under their service's name and
 * found by it, either once (`healthy`) or as a view that follows every change
 * (`watch`). Who lists them depends on the adapter (`listedBy`): the instances
 * themselves, which register, report that they are alive and deregister
 * (`DiscoveryMemory` in one process, `DiscoveryConsul` in deployments), or the
 * platform, which publishes the addresses of the ready instances under a name
 * (`DiscoveryDns`: a Kubernetes headless Service).
 */
import { type ConfigError, Context, Data, type Duration, Effect, Layer, type Stream } from "effect"

/** One running instance of a service, at the address others dial for Effect RPC. */
export interface Instance {
  /**
   * Unique per instance: `<service>-<random>` for instances that register
   * themselves, `<service>-<address>:<port>` for instances the platform lists.
   */
  readonly id: string
  readonly service: string
  /** An IPv4 or IPv6 address (without brackets), or a host name. */
  readonly host: string
  readonly port: number
}

export class DiscoveryError extends Data.TaggedError("DiscoveryError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message() {
    return `discovery ${this.operation} failed: ${String(this.cause)}`
  }
}

export class Discovery extends Context.Tag("@movieapp/platform/Discovery")<Discovery, {
  /**
   * Who decides which instances are listed.
   * - `"instances"`: each instance registers itself, reports that it is alive
   *   within `ttl`, and deregisters when it stops (Registration does all three).
   * - `"platform"`: the platform lists the instances it considers ready (DNS
   *   records of a Kubernetes headless Service follow readiness probes).
   *   `register`, `deregister` and `reportHealthy` then succeed and change
   *   nothing, `ttl` is infinite, and Registration does not run.
   */
  readonly listedBy: "instances" | "platform"
  /**
   * How long a registered instance stays healthy without reporting. Registration
   * reports well within it. Infinite where the platform lists instances.
   */
  readonly ttl: Duration.Duration
  /**
   * Registers `instance`, healthy at once; registering the same id again replaces it.
   * Changes nothing where the platform lists instances.
   */
  readonly register: (instance: Instance) => Effect.Effect<void, DiscoveryError>
  /**
   * Removes the instance; an instance that is already gone is not an error.
   * Changes nothing where the platform lists instances.
   */
  readonly deregister: (instanceId: string) => Effect.Effect<void, DiscoveryError>
  /**
   * Heartbeat: keeps the instance healthy for another `ttl`, or makes it healthy
   * again. Fails for an instance the registry does not know (never registered, or
   * removed after being unhealthy for too long): the caller registers again.
   * Succeeds and changes nothing where the platform lists instances.
   */
  readonly reportHealthy: (instanceId: string) => Effect.Effect<void, DiscoveryError>
  /** Healthy instances of `service` now (one lookup). */
  readonly healthy: (service: string) => Effect.Effect<ReadonlyArray<Instance>, DiscoveryError>
  /**
   * The healthy instances of `service`: the current set at once, then the new set
   * after each change, without polling. It never fails: while the registry cannot
   * be reached the adapter retries with backoff and emits nothing, so consumers keep
   * their last view.
   */
  readonly watch: (service: string) => Stream.Stream<ReadonlyArray<Instance>>
}>() {}

/**
 * The Consul adapter from its settings (`CONSUL_*`), for composition roots: its
 * module, and the HTTP client it brings, load only when a configuration chooses it.
 */
export const layerConsul: Layer.Layer<Discovery, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(Effect.promise(() => import("./DiscoveryConsul.js")), (consul) => consul.layerConfig)
)
