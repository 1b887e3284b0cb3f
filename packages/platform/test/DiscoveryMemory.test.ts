import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Ref, TestClock } from "effect"
import { Discovery } from "../src/Discovery.js"
import * as DiscoveryDns from "../src/DiscoveryDns.js"
import * as DiscoveryMemory from "../src/DiscoveryMemory.js"
import * as Registration from "../src/Registration.js"
import { discoveryContract } from "./DiscoveryContract.js"

discoveryContract("memory", DiscoveryMemory.layer({ ttl: "5 seconds", deregisterCriticalAfter: "1 minute" }), {
  listedBy: "instances",
  elapse: TestClock.adjust,
  deregisterCriticalAfter: "1 minute"
})

describe("Registration", () => {
  it.effect("registers on start, heartbeats past the TTL, deregisters on stop", () =>
    Effect.gen(function*() {
      const discovery = yield* DiscoveryMemory.make({ ttl: "5 seconds" })
      const registered = Registration.layer({ service: "svc", host: "192.0.2.9", port: 9000 }).pipe(
        Layer.provide(Layer.succeed(Discovery, discovery))
      )
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Layer.build(registered)
        const [instance] = yield* discovery.healthy("svc")
        assert.strictEqual(instance?.host, "192.0.2.9")
        assert.strictEqual(instance?.port, 9000)
        assert.match(instance?.id ?? "", /^svc-[0-9a-f]+$/)
        // Well past the TTL: only the heartbeat keeps it healthy.
        yield* TestClock.adjust("30 seconds")
        assert.strictEqual((yield* discovery.healthy("svc")).length, 1)
      }))
      assert.deepStrictEqual(yield* discovery.healthy("svc"), [])
    }))

  it.effect("registers again when the registry has forgotten the instance", () =>
    Effect.gen(function*() {
      const discovery = yield* DiscoveryMemory.make({ ttl: "5 seconds", deregisterCriticalAfter: "1 minute" })
      const registered = Registration.layer({ service: "svc", host: "192.0.2.9", port: 9000 }).pipe(
        Layer.provide(Layer.succeed(Discovery, discovery))
      )
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Layer.build(registered)
        const [instance] = yield* discovery.healthy("svc")
        // The registry loses it (an agent restarted without its state, an operator removed it).
        yield* discovery.deregister(instance!.id)
        assert.deepStrictEqual(yield* discovery.healthy("svc"), [])
        yield* TestClock.adjust("5 seconds")
        assert.deepStrictEqual(yield* discovery.healthy("svc"), [instance!])
      }))
    }))

  it.effect("does nothing where the platform lists instances (DNS)", () =>
    Effect.gen(function*() {
      const dns = yield* DiscoveryDns.make({ addresses: new Map(), refreshInterval: Duration.seconds(5) })
      const calls = yield* Ref.make<ReadonlyArray<string>>([])
      const record = (call: string) => Ref.update(calls, (all) => [...all, call])
      const discovery = Discovery.of({
        ...dns,
        register: (instance) => Effect.zipRight(record(`register ${instance.id}`), dns.register(instance)),
        reportHealthy: (id) => Effect.zipRight(record(`reportHealthy ${id}`), dns.reportHealthy(id)),
        deregister: (id) => Effect.zipRight(record(`deregister ${id}`), dns.deregister(id))
      })
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Layer.build(
          Registration.layer({ service: "metadata", host: "127.0.0.1", port: 8091, heartbeatInterval: "1 second" })
            .pipe(
              Layer.provide(Layer.succeed(Discovery, discovery))
            )
        )
        // Time for a few heartbeats, had there been any.
        yield* TestClock.adjust("5 seconds")
      }))
      assert.deepStrictEqual(yield* Ref.get(calls), [])
    }))
})
