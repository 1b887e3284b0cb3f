/**
 * The behaviour every Discovery adapter must have: this suite is the port's
 * definition, run against each adapter (memory, the Consul adapter over the
 * agent API double, and a real Consul agent when one is configured).
 */
import { assert, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, type Layer, Option, Stream, SubscriptionRef } from "effect"
import { Discovery, type Instance } from "../src/Discovery.js"

export interface ContractOptions {
  /** Lets time pass as the adapter experiences it (the test clock for memory, real time otherwise). */
  readonly elapse: (duration: Duration.DurationInput) => Effect.Effect<void>
  /** How long an unhealthy instance lasts before the adapter removes it (its setting). */
  readonly deregisterCriticalAfter: Duration.DurationInput
  /**
   * Adapters behind a network on the real clock: changes show up eventually, so
   * conditions are polled up to `patience` instead of checked once.
   */
  readonly live?: { readonly patience: Duration.DurationInput }
  readonly timeout?: Duration.DurationInput
}

const ids = (instances: ReadonlyArray<Instance>) => instances.map((i) => i.id).sort()

export const discoveryContract = (name: string, adapter: Layer.Layer<Discovery, unknown>, options: ContractOptions) =>
  layer(adapter, { timeout: options.timeout ?? "60 seconds", excludeTestServices: options.live !== undefined })(
    `Discovery contract: ${name}`,
    (it) => {
      // Names unique per run: a real agent keeps what an earlier, interrupted run left behind.
      const run = Math.random().toString(36).slice(2, 8)
      const service = (name: string) => `contract-${run}-${name}`
      const instance = (svc: string, id: string, port: number, host = "10.0.0.1"): Instance => ({
        id: `${svc}-${id}`,
        service: svc,
        host,
        port
      })

      /** Waits (live) or checks once (test clock) until `effect`'s result satisfies `until`. */
      const eventually = <A, E>(effect: Effect.Effect<A, E>, until: (a: A) => boolean, what: string): Effect.Effect<A, E> => {
        const live = options.live
        if (live === undefined) {
          return Effect.flatMap(effect, (a) => until(a) ? Effect.succeed(a) : Effect.dieMessage(`expected ${what}, got ${JSON.stringify(a)}`))
        }
        const poll: Effect.Effect<A, E> = Effect.flatMap(effect, (a) =>
          until(a) ? Effect.succeed(a) : Effect.zipRight(Effect.sleep("50 millis"), Effect.suspend(() => poll)))
        return poll.pipe(Effect.timeoutFail({ duration: live.patience, onTimeout: () => new Error(`timed out waiting for ${what}`) }), Effect.orDie)
      }

      const healthyIds = (svc: string, expected: ReadonlyArray<string>) =>
        Effect.flatMap(Discovery, (d) =>
          eventually(Effect.map(d.healthy(svc), ids), (got) => JSON.stringify(got) === JSON.stringify([...expected].sort()), `${svc} healthy = [${expected}]`))

      /** Follows `watch(svc)` in the background; `until` waits for a view satisfying a condition. */
      const follow = (svc: string) =>
        Effect.gen(function* () {
          const discovery = yield* Discovery
          const latest = yield* SubscriptionRef.make<ReadonlyArray<Instance> | undefined>(undefined)
          yield* discovery.watch(svc).pipe(Stream.runForEach((view) => SubscriptionRef.set(latest, view)), Effect.forkScoped)
          const until = (expected: ReadonlyArray<string>) => {
            const seen = latest.changes.pipe(
              Stream.filter((view) => view !== undefined && JSON.stringify(ids(view)) === JSON.stringify([...expected].sort())),
              Stream.runHead,
              Effect.map((view) => Option.getOrThrow(view)!)
            )
            const live = options.live
            return live === undefined ? seen : seen.pipe(
              Effect.timeoutFail({ duration: live.patience, onTimeout: () => new Error(`watch(${svc}) never showed [${expected}]`) }),
              Effect.orDie
            )
          }
          return { until }
        })

      it.scoped("a registered instance is healthy, with its address", () =>
        Effect.gen(function* () {
          const discovery = yield* Discovery
          const svc = service("a")
          const registered = instance(svc, "1", 7001)
          yield* discovery.register(registered)
          const found = yield* eventually(discovery.healthy(svc), (l) => l.length === 1, "one instance")
          assert.deepStrictEqual(found, [registered])
          yield* discovery.deregister(registered.id)
        }))

      it.scoped("several instances per service; services are separate", () =>
        Effect.gen(function* () {
          const discovery = yield* Discovery
          const [b, c] = [service("b"), service("c")]
          yield* discovery.register(instance(b, "1", 7001))
          yield* discovery.register(instance(b, "2", 7002))
          yield* discovery.register(instance(c, "1", 7003))
          yield* healthyIds(b, [`${b}-1`, `${b}-2`])
          yield* healthyIds(c, [`${c}-1`])
          assert.deepStrictEqual(yield* discovery.healthy(service("unknown")), [])
          for (const id of [`${b}-1`, `${b}-2`, `${c}-1`]) yield* discovery.deregister(id)
        }))

      it.scoped("a deregistered instance is gone; deregistering again is not an error", () =>
        Effect.gen(function* () {
          const discovery = yield* Discovery
          const svc = service("d")
          yield* discovery.register(instance(svc, "1", 7001))
          yield* discovery.register(instance(svc, "2", 7002))
          yield* healthyIds(svc, [`${svc}-1`, `${svc}-2`])
          yield* discovery.deregister(`${svc}-1`)
          yield* healthyIds(svc, [`${svc}-2`])
          yield* discovery.deregister(`${svc}-1`)
          yield* discovery.deregister(`${svc}-2`)
          yield* healthyIds(svc, [])
        }))

      it.scoped("registering the same id again replaces its address", () =>
        Effect.gen(function* () {
          const discovery = yield* Discovery
          const svc = service("r")
          yield* discovery.register(instance(svc, "1", 7001))
          yield* discovery.register(instance(svc, "1", 7101, "10.0.0.2"))
          const found = yield* eventually(discovery.healthy(svc), (l) => l.length === 1 && l[0]!.port === 7101, "the new address")
          assert.deepStrictEqual(found, [instance(svc, "1", 7101, "10.0.0.2")])
          yield* discovery.deregister(`${svc}-1`)
        }))

      it.scoped("an instance that stops reporting becomes unhealthy; reporting brings it back", () =>
        Effect.gen(function* () {
          const discovery = yield* Discovery
          const svc = service("e")
          yield* discovery.register(instance(svc, "stale", 7001))
          yield* discovery.register(instance(svc, "live", 7002))
          yield* healthyIds(svc, [`${svc}-live`, `${svc}-stale`])
          yield* options.elapse(Duration.sum(discovery.ttl, Duration.seconds(1)))
          yield* discovery.reportHealthy(`${svc}-live`)
          yield* healthyIds(svc, [`${svc}-live`])
          yield* discovery.reportHealthy(`${svc}-stale`)
          yield* healthyIds(svc, [`${svc}-live`, `${svc}-stale`])
          yield* discovery.deregister(`${svc}-stale`)
          yield* discovery.deregister(`${svc}-live`)
        }))

      it.scoped("reporting for an unknown instance fails", () =>
        Effect.gen(function* () {
          const discovery = yield* Discovery
          const error = yield* Effect.flip(discovery.reportHealthy(`${service("x")}-never-registered`))
          assert.strictEqual(error._tag, "DiscoveryError")
        }))

      it.scoped("an instance unhealthy for longer than deregisterCriticalAfter is removed; registering brings it back", () =>
        Effect.gen(function* () {
          const discovery = yield* Discovery
          const svc = service("reaped")
          const gone = instance(svc, "1", 7001)
          yield* discovery.register(gone)
          yield* healthyIds(svc, [gone.id])
          yield* options.elapse(Duration.sum(Duration.sum(discovery.ttl, Duration.decode(options.deregisterCriticalAfter)), Duration.seconds(1)))
          // Removed, not merely unhealthy: its heartbeat is refused, which is what makes Registration register again.
          yield* eventually(Effect.either(discovery.reportHealthy(gone.id)), (result) => result._tag === "Left", "the heartbeat to be refused")
          yield* discovery.register(gone)
          yield* healthyIds(svc, [gone.id])
          yield* discovery.deregister(gone.id)
        }))

      it.scoped("watch shows the current set at once, then every registration, deregistration and expiry", () =>
        Effect.gen(function* () {
          const discovery = yield* Discovery
          const svc = service("w")
          const view = yield* follow(svc)
          yield* view.until([])
          yield* discovery.register(instance(svc, "1", 7001))
          yield* view.until([`${svc}-1`])
          yield* discovery.register(instance(svc, "2", 7002))
          yield* view.until([`${svc}-1`, `${svc}-2`])
          yield* discovery.deregister(`${svc}-1`)
          yield* view.until([`${svc}-2`])
          // Expiry is a change too, though nobody called anything.
          yield* options.elapse(Duration.sum(discovery.ttl, Duration.seconds(1)))
          yield* view.until([])
          yield* discovery.reportHealthy(`${svc}-2`)
          yield* view.until([`${svc}-2`])
          yield* discovery.deregister(`${svc}-2`)
          yield* view.until([])
        }))

      it.scoped("a new watcher of a populated service starts from the current set; watchers are independent", () =>
        Effect.gen(function* () {
          const discovery = yield* Discovery
          const svc = service("w2")
          yield* discovery.register(instance(svc, "1", 7001))
          yield* healthyIds(svc, [`${svc}-1`])
          const first = yield* follow(svc)
          const second = yield* follow(svc)
          const [a] = yield* first.until([`${svc}-1`])
          assert.deepStrictEqual(a, instance(svc, "1", 7001))
          yield* second.until([`${svc}-1`])
          yield* discovery.deregister(`${svc}-1`)
          yield* first.until([])
          yield* second.until([])
        }))

      it.scoped("a watch stops when its consumer does", () =>
        Effect.gen(function* () {
          const discovery = yield* Discovery
          const svc = service("w3")
          const fiber = yield* discovery.watch(svc).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
          const [first] = yield* Fiber.join(fiber)
          assert.deepStrictEqual(first, [])
        }))
    }
  )
