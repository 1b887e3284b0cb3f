/**
 * The behaviour every Discovery adapter must have: this suite is the port's
 * definition, run against each adapter (memory, the Consul adapter over the
 * agent API double, a real Consul agent when one is configured, DNS against a
 * real DNS server).
 *
 * It has two parts. Finding instances (`healthy`, `watch`) holds for every
 * adapter; the suite lists instances through `Listing`, which registers them
 * where instances register themselves, and which a platform-listed adapter's test
 * provides (DNS: it changes the records its DNS server answers). Registration,
 * heartbeats and expiry hold only where instances register themselves
 * (`listedBy: "instances"`); where the platform lists them, the suite checks
 * instead that registering changes nothing.
 */
import { assert, layer } from "@effect/vitest"
import { Context, Duration, Effect, Fiber, type Layer, Option, Stream, SubscriptionRef } from "effect"
import { Discovery, type Instance } from "../src/Discovery.js"

/** How the suite makes the registry list instances of a service. */
export class Listing extends Context.Tag("@movieapp/platform/test/DiscoveryContract/Listing")<Listing, {
  /** Makes the registry list exactly `hosts` as the instances of `service`, replacing what it listed. */
  readonly list: (service: string, hosts: ReadonlyArray<string>) => Effect.Effect<void>
  /** The port the listed instances are found at. */
  readonly port: number
}>() {}

interface Common {
  /**
   * Adapters behind a network on the real clock: changes show up eventually, so
   * conditions are polled up to `patience` instead of checked once.
   */
  readonly live?: { readonly patience: Duration.DurationInput }
  readonly timeout?: Duration.DurationInput
}

export type ContractOptions =
  & Common
  & (
    | {
      /** Instances register themselves; the suite lists them by registering them. */
      readonly listedBy: "instances"
      /** Lets time pass as the adapter experiences it (the test clock for memory, real time otherwise). */
      readonly elapse: (duration: Duration.DurationInput) => Effect.Effect<void>
      /** How long an unhealthy instance lasts before the adapter removes it (its setting). */
      readonly deregisterCriticalAfter: Duration.DurationInput
    }
    | {
      /** The platform lists instances; the adapter's layer provides `Listing` too. */
      readonly listedBy: "platform"
    }
  )

const hostsOf = (instances: ReadonlyArray<Instance>) => instances.map((i) => i.host).sort()
const ids = (instances: ReadonlyArray<Instance>) => instances.map((i) => i.id).sort()

/** Lists instances by registering them at port 7001 (as `<service>-<host>`) and deregistering the others. */
const byRegistering = Effect.map(Discovery, (discovery) => {
  const registered = new Map<string, ReadonlyArray<string>>()
  const id = (service: string, host: string) => `${service}-${host}`
  return Listing.of({
    port: 7001,
    list: (service, hosts) =>
      Effect.gen(function*() {
        for (const gone of (registered.get(service) ?? []).filter((host) => !hosts.includes(host))) {
          yield* Effect.orDie(discovery.deregister(id(service, gone)))
        }
        for (const host of hosts) {
          yield* Effect.orDie(discovery.register({ id: id(service, host), service, host, port: 7001 }))
        }
        registered.set(service, hosts)
      })
  })
})

export const discoveryContract = (
  name: string,
  adapter: Layer.Layer<Discovery, unknown> | Layer.Layer<Discovery | Listing, unknown>,
  options: ContractOptions
) =>
  layer(adapter as Layer.Layer<Discovery, unknown>, {
    timeout: options.timeout ?? "60 seconds",
    excludeTestServices: options.live !== undefined
  })(
    `Discovery contract: ${name}`,
    (it) => {
      // Names unique per run: a real agent keeps what an earlier, interrupted run left behind.
      const run = Math.random().toString(36).slice(2, 8)
      const service = (name: string) => `contract-${run}-${name}`
      const listing = options.listedBy === "instances"
        ? byRegistering
        : Effect.serviceOptional(Listing).pipe(
          Effect.orDieWith(() => new Error("a platform-listed adapter's layer must provide Listing"))
        )

      /** Waits (live) or checks once (test clock) until `effect`'s result satisfies `until`. */
      const eventually = <A, E>(
        effect: Effect.Effect<A, E>,
        until: (a: A) => boolean,
        what: string
      ): Effect.Effect<A, E> => {
        const live = options.live
        if (live === undefined) {
          return Effect.flatMap(
            effect,
            (a) => until(a) ? Effect.succeed(a) : Effect.dieMessage(`expected ${what}, got ${JSON.stringify(a)}`)
          )
        }
        const poll: Effect.Effect<A, E> = Effect.flatMap(
          effect,
          (a) => until(a) ? Effect.succeed(a) : Effect.zipRight(Effect.sleep("50 millis"), Effect.suspend(() => poll))
        )
        return poll.pipe(
          Effect.timeoutFail({ duration: live.patience, onTimeout: () => new Error(`timed out waiting for ${what}`) }),
          Effect.orDie
        )
      }

      const healthyHosts = (svc: string, expected: ReadonlyArray<string>) =>
        Effect.flatMap(
          Discovery,
          (d) =>
            eventually(
              d.healthy(svc),
              (got) => JSON.stringify(hostsOf(got)) === JSON.stringify([...expected].sort()),
              `${svc} healthy at [${expected}]`
            )
        )

      /** Follows `watch(svc)` in the background; `until` waits for a view whose instances are at `expected` hosts. */
      const follow = (svc: string) =>
        Effect.gen(function*() {
          const discovery = yield* Discovery
          const latest = yield* SubscriptionRef.make<ReadonlyArray<Instance> | undefined>(undefined)
          yield* discovery.watch(svc).pipe(
            Stream.runForEach((view) => SubscriptionRef.set(latest, view)),
            Effect.forkScoped
          )
          const until = (
            expected: ReadonlyArray<string>,
            by: (view: ReadonlyArray<Instance>) => ReadonlyArray<string> = hostsOf
          ) => {
            const seen = latest.changes.pipe(
              Stream.filter((view) =>
                view !== undefined && JSON.stringify(by(view)) === JSON.stringify([...expected].sort())
              ),
              Stream.runHead,
              Effect.map((view) => Option.getOrThrow(view)!)
            )
            const live = options.live
            return live === undefined ? seen : seen.pipe(
              Effect.timeoutFail({
                duration: live.patience,
                onTimeout: () => new Error(`watch(${svc}) never showed [${expected}]`)
              }),
              Effect.orDie
            )
          }
          return { until }
        })

      // ---- Finding instances: every adapter ----

      it.scoped("a listed instance is found, with its address", () =>
        Effect.gen(function*() {
          const { list, port } = yield* listing
          const svc = service("a")
          yield* list(svc, ["127.0.0.11"])
          const [found] = yield* healthyHosts(svc, ["127.0.0.11"])
          assert.deepInclude(found, { service: svc, host: "127.0.0.11", port })
          assert.isNotEmpty(found!.id)
          yield* list(svc, [])
        }))

      it.scoped("several instances per service, IPv4 and IPv6; services are separate", () =>
        Effect.gen(function*() {
          const discovery = yield* Discovery
          const { list } = yield* listing
          const [b, c] = [service("b"), service("c")]
          yield* list(b, ["127.0.0.11", "127.0.0.12", "::1"])
          yield* list(c, ["127.0.0.13"])
          const instances = yield* healthyHosts(b, ["127.0.0.11", "127.0.0.12", "::1"])
          assert.strictEqual(new Set(ids(instances)).size, 3, "each instance has an id of its own")
          assert.isTrue(instances.every((i) => i.service === b))
          yield* healthyHosts(c, ["127.0.0.13"])
          assert.deepStrictEqual(yield* discovery.healthy(service("unknown")), [])
          yield* list(b, [])
          yield* list(c, [])
        }))

      it.scoped("an instance no longer listed is gone", () =>
        Effect.gen(function*() {
          const { list } = yield* listing
          const svc = service("d")
          yield* list(svc, ["127.0.0.11", "127.0.0.12"])
          yield* healthyHosts(svc, ["127.0.0.11", "127.0.0.12"])
          yield* list(svc, ["127.0.0.12"])
          yield* healthyHosts(svc, ["127.0.0.12"])
          yield* list(svc, [])
          yield* healthyHosts(svc, [])
        }))

      it.scoped("watch shows the current set at once, then every change", () =>
        Effect.gen(function*() {
          const { list } = yield* listing
          const svc = service("w")
          const view = yield* follow(svc)
          yield* view.until([])
          yield* list(svc, ["127.0.0.11"])
          yield* view.until(["127.0.0.11"])
          yield* list(svc, ["127.0.0.11", "127.0.0.12"])
          yield* view.until(["127.0.0.11", "127.0.0.12"])
          yield* list(svc, ["127.0.0.12"])
          yield* view.until(["127.0.0.12"])
          yield* list(svc, [])
          yield* view.until([])
        }))

      it.scoped("a new watcher of a populated service starts from the current set; watchers are independent", () =>
        Effect.gen(function*() {
          const { list, port } = yield* listing
          const svc = service("w2")
          yield* list(svc, ["127.0.0.11"])
          yield* healthyHosts(svc, ["127.0.0.11"])
          const first = yield* follow(svc)
          const second = yield* follow(svc)
          const [a] = yield* first.until(["127.0.0.11"])
          assert.deepInclude(a, { service: svc, host: "127.0.0.11", port })
          yield* second.until(["127.0.0.11"])
          yield* list(svc, [])
          yield* first.until([])
          yield* second.until([])
        }))

      it.scoped("a watch stops when its consumer does", () =>
        Effect.gen(function*() {
          const discovery = yield* Discovery
          const svc = service("w3")
          const fiber = yield* discovery.watch(svc).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
          const [first] = yield* Fiber.join(fiber)
          assert.deepStrictEqual(first, [])
        }))

      // ---- Registration: only where the platform does not list instances ----

      if (options.listedBy === "platform") {
        it.scoped("registering, deregistering and heartbeats succeed and change nothing", () =>
          Effect.gen(function*() {
            const discovery = yield* Discovery
            const { list, port } = yield* listing
            assert.strictEqual(discovery.listedBy, "platform")
            assert.isTrue(Duration.equals(discovery.ttl, Duration.infinity))
            const svc = service("p")
            yield* list(svc, ["127.0.0.11"])
            const [listed] = yield* healthyHosts(svc, ["127.0.0.11"])
            yield* discovery.register({ id: `${svc}-other`, service: svc, host: "127.0.0.99", port })
            yield* discovery.reportHealthy(`${svc}-never-registered`)
            yield* discovery.deregister(listed!.id)
            assert.deepStrictEqual(yield* discovery.healthy(svc), [listed!])
            yield* list(svc, [])
          }))
        return
      }
      const { elapse, deregisterCriticalAfter } = options
      const instance = (svc: string, id: string, port: number, host = "192.0.2.1"): Instance => ({
        id: `${svc}-${id}`,
        service: svc,
        host,
        port
      })
      const healthyIds = (svc: string, expected: ReadonlyArray<string>) =>
        Effect.flatMap(
          Discovery,
          (d) =>
            eventually(
              Effect.map(d.healthy(svc), ids),
              (got) => JSON.stringify(got) === JSON.stringify([...expected].sort()),
              `${svc} healthy = [${expected}]`
            )
        )

      it.scoped("instances register themselves", () =>
        Effect.map(Discovery, (discovery) => assert.strictEqual(discovery.listedBy, "instances")))

      it.scoped("a registered instance is healthy, with its id and address", () =>
        Effect.gen(function*() {
          const discovery = yield* Discovery
          const svc = service("ra")
          const registered = instance(svc, "1", 7001)
          yield* discovery.register(registered)
          const found = yield* eventually(discovery.healthy(svc), (l) => l.length === 1, "one instance")
          assert.deepStrictEqual(found, [registered])
          yield* discovery.deregister(registered.id)
        }))

      it.scoped("deregistering an instance that is gone is not an error", () =>
        Effect.gen(function*() {
          const discovery = yield* Discovery
          const svc = service("rd")
          yield* discovery.register(instance(svc, "1", 7001))
          yield* healthyIds(svc, [`${svc}-1`])
          yield* discovery.deregister(`${svc}-1`)
          yield* healthyIds(svc, [])
          yield* discovery.deregister(`${svc}-1`)
          yield* discovery.deregister(`${svc}-never-registered`)
        }))

      it.scoped("registering the same id again replaces its address", () =>
        Effect.gen(function*() {
          const discovery = yield* Discovery
          const svc = service("r")
          yield* discovery.register(instance(svc, "1", 7001))
          yield* discovery.register(instance(svc, "1", 7101, "192.0.2.2"))
          const found = yield* eventually(
            discovery.healthy(svc),
            (l) => l.length === 1 && l[0]!.port === 7101,
            "the new address"
          )
          assert.deepStrictEqual(found, [instance(svc, "1", 7101, "192.0.2.2")])
          yield* discovery.deregister(`${svc}-1`)
        }))

      it.scoped("an instance that stops reporting becomes unhealthy; reporting brings it back", () =>
        Effect.gen(function*() {
          const discovery = yield* Discovery
          const svc = service("e")
          yield* discovery.register(instance(svc, "stale", 7001))
          yield* discovery.register(instance(svc, "live", 7002))
          yield* healthyIds(svc, [`${svc}-live`, `${svc}-stale`])
          yield* elapse(Duration.sum(discovery.ttl, Duration.seconds(1)))
          yield* discovery.reportHealthy(`${svc}-live`)
          yield* healthyIds(svc, [`${svc}-live`])
          yield* discovery.reportHealthy(`${svc}-stale`)
          yield* healthyIds(svc, [`${svc}-live`, `${svc}-stale`])
          yield* discovery.deregister(`${svc}-stale`)
          yield* discovery.deregister(`${svc}-live`)
        }))

      it.scoped("reporting for an unknown instance fails", () =>
        Effect.gen(function*() {
          const discovery = yield* Discovery
          const error = yield* Effect.flip(discovery.reportHealthy(`${service("x")}-never-registered`))
          assert.strictEqual(error._tag, "DiscoveryError")
        }))

      it.scoped("an instance unhealthy for longer than deregisterCriticalAfter is removed; registering brings it back", () =>
        Effect.gen(function*() {
          const discovery = yield* Discovery
          const svc = service("reaped")
          const gone = instance(svc, "1", 7001)
          yield* discovery.register(gone)
          yield* healthyIds(svc, [gone.id])
          yield* elapse(
            Duration.sum(Duration.sum(discovery.ttl, Duration.decode(deregisterCriticalAfter)), Duration.seconds(1))
          )
          // Removed, not merely unhealthy: its heartbeat is refused, which is what makes Registration register again.
          yield* eventually(
            Effect.either(discovery.reportHealthy(gone.id)),
            (result) => result._tag === "Left",
            "the heartbeat to be refused"
          )
          yield* discovery.register(gone)
          yield* healthyIds(svc, [gone.id])
          yield* discovery.deregister(gone.id)
        }))

      it.scoped("watch shows registrations, deregistrations and an expiry, though nobody called anything", () =>
        Effect.gen(function*() {
          const discovery = yield* Discovery
          const svc = service("we")
          const view = yield* follow(svc)
          yield* view.until([], ids)
          yield* discovery.register(instance(svc, "1", 7001))
          yield* view.until([`${svc}-1`], ids)
          yield* discovery.register(instance(svc, "2", 7002))
          yield* view.until([`${svc}-1`, `${svc}-2`], ids)
          yield* discovery.deregister(`${svc}-1`)
          yield* view.until([`${svc}-2`], ids)
          yield* elapse(Duration.sum(discovery.ttl, Duration.seconds(1)))
          yield* view.until([], ids)
          yield* discovery.reportHealthy(`${svc}-2`)
          yield* view.until([`${svc}-2`], ids)
          yield* discovery.deregister(`${svc}-2`)
          yield* view.until([], ids)
        }))
    }
  )
