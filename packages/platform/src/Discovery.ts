/**
 * Service discovery port: instances register themselves, report that they are
 * alive, and are found by service name. Adapters: `DiscoveryMemory` (one process)
 * and, for deployments, Consul.
 */
import { Context, Data, type Effect } from "effect"

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
  readonly register: (instance: Instance) => Effect.Effect<void, DiscoveryError>
  readonly deregister: (instanceId: string) => Effect.Effect<void, DiscoveryError>
  /** Heartbeat: an instance that stops reporting drops out of `healthy`. */
  readonly reportHealthy: (instanceId: string) => Effect.Effect<void, DiscoveryError>
  /** Instances of `service` that reported recently. */
  readonly healthy: (service: string) => Effect.Effect<ReadonlyArray<Instance>, DiscoveryError>
}>() {}
