/**
 * Service discovery port: instances register themselves, report that they are
 * alive, and are found by service name, either once (`healthy`) or as a view
 * that follows every change (`watch`). Adapters: `DiscoveryMemory` (one process)
 * and `DiscoveryConsul` (deployments).
 */
import { Context, Data, type Duration, type Effect, type Stream } from "effect"

/** One running instance of a service, at the address others dial for Effect RPC. */
export interface Instance {
  /** Unique per process: `<service>-<random>`. */
  readonly id: string
  readonly service: string
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
   * How long a registered instance stays healthy without reporting. Registration
   * reports well within it.
   */
  readonly ttl: Duration.Duration
  /** Registers `instance`, healthy at once; registering the same id again replaces it. */
  readonly register: (instance: Instance) => Effect.Effect<void, DiscoveryError>
  /** Removes the instance; an instance that is already gone is not an error. */
  readonly deregister: (instanceId: string) => Effect.Effect<void, DiscoveryError>
  /**
   * Heartbeat: keeps the instance healthy for another `ttl`, or makes it healthy
   * again. Fails for an instance the registry does not know (never registered, or
   * removed after being unhealthy for too long): the caller registers again.
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
