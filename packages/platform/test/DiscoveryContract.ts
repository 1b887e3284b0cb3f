/**
 * The behaviour every Discovery adapter must have. `elapse` moves time past a
 * duration the way the adapter experiences it (the test clock for memory).
 */
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, type Layer } from "effect"
import { Discovery, type Instance } from "../src/Discovery.js"

export interface ContractOptions {
  readonly ttl: Duration.DurationInput
  readonly elapse: (duration: Duration.DurationInput) => Effect.Effect<void>
}

const instance = (service: string, id: string, port: number): Instance => ({ id, service, host: "10.0.0.1", port })
const ids = (instances: ReadonlyArray<Instance>) => instances.map((i) => i.id).sort()

export const discoveryContract = (name: string, adapter: Layer.Layer<Discovery, unknown>, options: ContractOptions) =>
  layer(adapter, { timeout: "60 seconds" })(`Discovery contract: ${name}`, (it) => {
    it.effect("a registered instance is healthy, with its address", () =>
      Effect.gen(function* () {
        const discovery = yield* Discovery
        const registered = instance("svc-a", "svc-a-1", 7001)
        yield* discovery.register(registered)
        assert.deepStrictEqual(yield* discovery.healthy("svc-a"), [registered])
        yield* discovery.deregister(registered.id)
      }))

    it.effect("several instances per service; services are separate", () =>
      Effect.gen(function* () {
        const discovery = yield* Discovery
        yield* discovery.register(instance("svc-b", "svc-b-1", 7001))
        yield* discovery.register(instance("svc-b", "svc-b-2", 7002))
        yield* discovery.register(instance("svc-c", "svc-c-1", 7003))
        assert.deepStrictEqual(ids(yield* discovery.healthy("svc-b")), ["svc-b-1", "svc-b-2"])
        assert.deepStrictEqual(ids(yield* discovery.healthy("svc-c")), ["svc-c-1"])
        assert.deepStrictEqual(yield* discovery.healthy("svc-unknown"), [])
        for (const id of ["svc-b-1", "svc-b-2", "svc-c-1"]) yield* discovery.deregister(id)
      }))

    it.effect("a deregistered instance is gone", () =>
      Effect.gen(function* () {
        const discovery = yield* Discovery
        yield* discovery.register(instance("svc-d", "svc-d-1", 7001))
        yield* discovery.register(instance("svc-d", "svc-d-2", 7002))
        yield* discovery.deregister("svc-d-1")
        assert.deepStrictEqual(ids(yield* discovery.healthy("svc-d")), ["svc-d-2"])
        yield* discovery.deregister("svc-d-2")
      }))

    it.effect("an instance that stops reporting becomes unhealthy; reporting brings it back", () =>
      Effect.gen(function* () {
        const discovery = yield* Discovery
        yield* discovery.register(instance("svc-e", "svc-e-stale", 7001))
        yield* discovery.register(instance("svc-e", "svc-e-live", 7002))
        yield* options.elapse(Duration.sum(Duration.decode(options.ttl), Duration.seconds(1)))
        yield* discovery.reportHealthy("svc-e-live")
        assert.deepStrictEqual(ids(yield* discovery.healthy("svc-e")), ["svc-e-live"])
        yield* discovery.reportHealthy("svc-e-stale")
        assert.deepStrictEqual(ids(yield* discovery.healthy("svc-e")), ["svc-e-live", "svc-e-stale"])
        yield* discovery.deregister("svc-e-stale")
        yield* discovery.deregister("svc-e-live")
      }))

    it.effect("reporting for an unknown instance fails", () =>
      Effect.gen(function* () {
        const discovery = yield* Discovery
        const error = yield* Effect.flip(discovery.reportHealthy("never-registered"))
        assert.strictEqual(error._tag, "DiscoveryError")
      }))
  })
