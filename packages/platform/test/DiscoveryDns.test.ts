/**
 * The DNS adapter against a real DNS server (dnsmasq, on a loopback address of
 * its own, records changed as a test goes): the discovery contract, what is
 * particular to DNS, its configuration, and the system resolver as a deployment
 * uses it.
 *
 * The adapter resolves names with the system resolver (`dns.lookup`, i.e.
 * getaddrinfo), which asks only the servers named in /etc/resolv.conf, on port
 * 53, for the whole machine. So the in-process tests give the adapter a resolver
 * that asks the test's server (c-ares, A and AAAA queries over UDP), and the last
 * test runs the adapter with the system resolver in a process of its own whose
 * /etc/resolv.conf (a private mount namespace) names the test's server with
 * search domains, as a pod's does.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import * as DnsServer from "@movieapp/testkit/DnsServer"
import * as ServiceProcess from "@movieapp/testkit/ServiceProcess"
import {
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Layer,
  Logger,
  LogLevel,
  Ref,
  Stream,
  SubscriptionRef
} from "effect"
import * as PlatformConfig from "../src/Config.js"
import type { Discovery, Instance } from "../src/Discovery.js"
import * as DiscoveryDns from "../src/DiscoveryDns.js"
import { discoveryContract, Listing } from "./DiscoveryContract.js"

const quiet = Logger.minimumLogLevel(LogLevel.None)

/** The DNS server of the adapter's own tests. */
class Dns extends Context.Tag("DiscoveryDns.test/Dns")<Dns, DnsServer.DnsServer>() {}
const hostsOf = (instances: ReadonlyArray<Instance>) => instances.map((i) => i.host)

/** A lookup that asks `server` and counts its calls and failures. */
const countingLookup = (server: string) =>
  Effect.gen(function*() {
    const calls = yield* Ref.make(0)
    const failures = yield* Ref.make(0)
    const ask = DnsServer.lookupAt(server, { timeoutMillis: 200 })
    const lookup: DiscoveryDns.Lookup = async (name) => {
      Effect.runSync(Ref.update(calls, (n) => n + 1))
      try {
        return await ask(name)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOTFOUND") Effect.runSync(Ref.update(failures, (n) => n + 1))
        throw error
      }
    }
    return { lookup, calls: Ref.get(calls), failures: Ref.get(failures) }
  })

/** Follows `watch(service)`, keeping every view it emitted. */
const follow = (discovery: Discovery["Type"], service: string) =>
  Effect.gen(function*() {
    const views = yield* SubscriptionRef.make<ReadonlyArray<ReadonlyArray<Instance>>>([])
    yield* discovery.watch(service).pipe(
      Stream.runForEach((view) => SubscriptionRef.update(views, (all) => [...all, view])),
      Effect.forkScoped
    )
    const until = (hosts: ReadonlyArray<string>) =>
      views.changes.pipe(
        Stream.filter((all) => all.length > 0 && JSON.stringify(hostsOf(all.at(-1)!)) === JSON.stringify(hosts)),
        Stream.runHead,
        Effect.timeoutFail({
          duration: "10 seconds",
          onTimeout: () => new Error(`watch(${service}) never showed [${hosts}]`)
        }),
        Effect.orDie
      )
    return { views: SubscriptionRef.get(views), until }
  })

/** Waits until `effect` gives a value satisfying `ok` (at most 10 seconds). */
const waitFor = <A>(effect: Effect.Effect<A>, ok: (a: A) => boolean, what: string) => {
  const poll: Effect.Effect<A> = Effect.flatMap(
    effect,
    (a) => ok(a) ? Effect.succeed(a) : Effect.zipRight(Effect.sleep("20 millis"), poll)
  )
  return poll.pipe(
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`timed out waiting for ${what}`) }),
    Effect.orDie
  )
}

if (DnsServer.available()) {
  // The contract's services, each at <service>.contract.test:8091, added to the
  // configuration as the suite first lists them (a deployment configures them up front).
  const contractAdapter = Layer.unwrapScoped(Effect.gen(function*() {
    const server = yield* DnsServer.start()
    const addresses = new Map<string, DiscoveryDns.Address>()
    const listing = Listing.of({
      port: 8091,
      list: (service, hosts) => {
        const name = `${service}.contract.test`
        addresses.set(service, { host: name, port: 8091 })
        return server.set(name, hosts)
      }
    })
    return Layer.merge(
      DiscoveryDns.layer({ addresses, refreshInterval: Duration.millis(100) }, {
        lookup: DnsServer.lookupAt(server.server)
      }),
      Layer.succeed(Listing, listing)
    )
  })).pipe(Layer.orDie)
  discoveryContract("DNS (dnsmasq)", Layer.merge(contractAdapter, quiet), {
    listedBy: "platform",
    live: { patience: "10 seconds" }
  })

  layer(Layer.merge(Layer.scoped(Dns, Effect.orDie(DnsServer.start())), quiet), {
    excludeTestServices: true,
    timeout: "60 seconds"
  })(
    "DNS adapter",
    (it) => {
      it.scoped("every A and AAAA record of the name is an instance at the configured port", () =>
        Effect.gen(function*() {
          const server = yield* Dns
          yield* server.set("rating.records.test", ["127.0.0.22", "127.0.0.21", "::1"])
          const discovery = yield* DiscoveryDns.make(
            {
              addresses: new Map([["rating", { host: "rating.records.test", port: 9000 }]]),
              refreshInterval: Duration.seconds(1)
            },
            { lookup: DnsServer.lookupAt(server.server) }
          )
          assert.deepStrictEqual(yield* discovery.healthy("rating"), [
            { id: "rating-127.0.0.21:9000", service: "rating", host: "127.0.0.21", port: 9000 },
            { id: "rating-127.0.0.22:9000", service: "rating", host: "127.0.0.22", port: 9000 },
            { id: "rating-[::1]:9000", service: "rating", host: "::1", port: 9000 }
          ])
        }))

      it.scoped("watch resolves again every refresh interval and emits only when the set changes", () =>
        Effect.gen(function*() {
          const server = yield* Dns
          const name = "metadata.refresh.test"
          yield* server.set(name, ["127.0.0.21", "127.0.0.22"])
          const { lookup, calls } = yield* countingLookup(server.server)
          const discovery = yield* DiscoveryDns.make(
            { addresses: new Map([["metadata", { host: name, port: 8091 }]]), refreshInterval: Duration.millis(100) },
            { lookup }
          )
          const view = yield* follow(discovery, "metadata")
          yield* view.until(["127.0.0.21", "127.0.0.22"])
          // The same records again, in the other order: still the same set.
          yield* server.set(name, ["127.0.0.22", "127.0.0.21"])
          const seen = yield* calls
          yield* waitFor(calls, (n) => n >= seen + 5, "five more lookups")
          assert.lengthOf(yield* view.views, 1, "unchanged answers emit nothing")
          yield* server.set(name, ["127.0.0.22", "127.0.0.23"])
          yield* view.until(["127.0.0.22", "127.0.0.23"])
          assert.lengthOf(yield* view.views, 2)
        }))

      it.scoped("while the DNS server does not answer, the last view stays and lookups are retried", () =>
        Effect.gen(function*() {
          const server = yield* Dns
          const name = "rating.outage.test"
          yield* server.set(name, ["127.0.0.21"])
          const { lookup, failures } = yield* countingLookup(server.server)
          const discovery = yield* DiscoveryDns.make(
            { addresses: new Map([["rating", { host: name, port: 8092 }]]), refreshInterval: Duration.millis(100) },
            { lookup, backoff: "50 millis" }
          )
          const view = yield* follow(discovery, "rating")
          yield* view.until(["127.0.0.21"])
          yield* server.suspend
          yield* waitFor(failures, (n) => n >= 3, "three lookups to time out")
          const error = yield* Effect.flip(discovery.healthy("rating"))
          assert.include(error.message, `cannot resolve ${name}`)
          // Nothing was emitted: the gateway keeps calling the instances it knew.
          assert.deepStrictEqual((yield* view.views).map(hostsOf), [["127.0.0.21"]])
          yield* server.resume
          yield* server.set(name, ["127.0.0.22"])
          yield* view.until(["127.0.0.22"])
        }).pipe(Effect.ensuring(Effect.flatMap(Dns, (server) => server.resume))))

      it.scoped("an address is its own instance, without a lookup", () =>
        Effect.gen(function*() {
          const server = yield* Dns
          const { lookup, calls } = yield* countingLookup(server.server)
          const discovery = yield* DiscoveryDns.make({
            addresses: new Map([
              ["metadata", { host: "127.0.0.1", port: 8091 }],
              ["rating", { host: "::1", port: 8092 }]
            ]),
            refreshInterval: Duration.millis(100)
          }, { lookup })
          assert.deepStrictEqual(yield* discovery.healthy("metadata"), [{
            id: "metadata-127.0.0.1:8091",
            service: "metadata",
            host: "127.0.0.1",
            port: 8091
          }])
          const [first] = yield* discovery.watch("rating").pipe(Stream.take(1), Stream.runCollect)
          assert.deepStrictEqual(first, [{ id: "rating-[::1]:8092", service: "rating", host: "::1", port: 8092 }])
          assert.strictEqual(yield* calls, 0)
        }))

      it.scoped("the system resolver, as in a pod: search domains, A and AAAA, changes followed", () =>
        Effect.gen(function*() {
          if (!DnsServer.isRoot()) {
            const message = "the system-resolver test mounts its own /etc/resolv.conf in a namespace and needs root"
            if (process.env.CI) return yield* Effect.dieMessage(`${message}; CI requires it`)
            console.warn(`${message}: skipping it`)
            return
          }
          const server = yield* Dns
          const name = "metadata.movieapp.svc.cluster.local"
          const resolvConf = yield* server.resolvConf([
            "movieapp.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local"
          ])
          // A short name, as a pod in the namespace writes it: found through resolv.conf's search domains.
          const child = yield* ServiceProcess.start(
            "packages/platform/test/fixtures/WatchDns.ts",
            { METADATA_ADDRESS: "metadata:8091", DNS_REFRESH_INTERVAL: "100 millis" },
            ["metadata"],
            { resolvConf }
          )
          const view = (hosts: ReadonlyArray<string>) =>
            child.awaitLog((line) =>
              line.message === "view" &&
              JSON.stringify(hostsOf(line.instances as ReadonlyArray<Instance>)) === JSON.stringify(hosts)
            ).pipe(
              Effect.timeoutFail({
                duration: "30 seconds",
                onTimeout: () => new Error(`never saw [${hosts}]; logs: ${JSON.stringify(child.logs())}`)
              }),
              Effect.orDie
            )
          // No such name yet (NXDOMAIN under every search domain): no instance.
          yield* view([])
          yield* server.set(name, ["127.0.0.31", "::1"])
          const line = yield* view(["127.0.0.31", "::1"])
          assert.deepStrictEqual((line.instances as ReadonlyArray<Instance>).map((i) => i.port), [8091, 8091])
          yield* server.set(name, ["127.0.0.32"])
          yield* view(["127.0.0.32"])
        }))
    }
  )
} else {
  describe.skip("DNS discovery (dnsmasq is needed: bash scripts/dnsmasq.sh)", () => {
    it("runs the contract and the DNS adapter's tests against dnsmasq", () => {})
  })
}

describe("DNS discovery config", () => {
  // Errors as an operator reads them: the variable to set.
  const read = (env: Record<string, string>, services: ReadonlyArray<string> = ["metadata", "rating"]) =>
    DiscoveryDns.config(services).pipe(
      Effect.withConfigProvider(
        ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }).pipe(ConfigProvider.constantCase)
      ),
      Effect.mapError((error) => PlatformConfig.ConfigurationError.fromConfigError(error).message)
    )

  it.effect("METADATA_ADDRESS and RATING_ADDRESS as host:port; refreshed every 5 seconds by default", () =>
    Effect.gen(function*() {
      const config = yield* read({
        METADATA_ADDRESS: "metadata.movieapp.svc.cluster.local:8091",
        RATING_ADDRESS: " [::1]:8092 "
      })
      assert.deepStrictEqual([...config.addresses], [
        ["metadata", { host: "metadata.movieapp.svc.cluster.local", port: 8091 }],
        ["rating", { host: "::1", port: 8092 }]
      ])
      assert.deepStrictEqual(config.refreshInterval, Duration.seconds(5))
      const fast = yield* read({
        METADATA_ADDRESS: "127.0.0.1:8091",
        RATING_ADDRESS: "rating:8092",
        DNS_REFRESH_INTERVAL: "500 millis"
      })
      assert.deepStrictEqual(fast.refreshInterval, Duration.millis(500))
      assert.deepStrictEqual(fast.addresses.get("metadata"), { host: "127.0.0.1", port: 8091 })
    }))

  it.effect("an address is required for each service called, and must have a port", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(read({ METADATA_ADDRESS: "metadata:8091" }))
      assert.include(missing, "RATING_ADDRESS (rating.address in CONFIG_FILE) is required and not set")
      for (const bad of ["metadata", "metadata:", "metadata:0", "metadata:70000", "::1:8091", "http://metadata:8091"]) {
        const error = yield* Effect.flip(read({ METADATA_ADDRESS: bad }, ["metadata"]))
        assert.include(error, "METADATA_ADDRESS (metadata.address in CONFIG_FILE): Expected", bad)
      }
      const slow = yield* Effect.flip(
        read({ METADATA_ADDRESS: "metadata:8091", DNS_REFRESH_INTERVAL: "2 hours" }, ["metadata"])
      )
      assert.include(
        slow,
        "DNS_REFRESH_INTERVAL (dns.refreshInterval in CONFIG_FILE): Expected a duration from 100 millis to 1 hour"
      )
    }))

  it.effect("a process that calls nobody needs no address", () =>
    Effect.map(read({}, []), (config) => assert.strictEqual(config.addresses.size, 0)))
})
