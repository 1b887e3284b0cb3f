/**
 * The Consul adapter over HTTP: the discovery contract against the agent API
 * double (and against a real agent when CONSUL_HTTP_ADDR is set), then what is
 * particular to Consul: what a registration looks like to Consul, blocking
 * queries, an index that goes backwards, an unreachable agent, ACL tokens, and
 * configuration.
 */
import { FetchHttpClient } from "@effect/platform"
import { assert, describe, it, layer } from "@effect/vitest"
import { ConsulAgent, type ConsulAgentDouble } from "@movieapp/testkit/ConsulAgentDouble"
import * as RequiredServer from "@movieapp/testkit/RequiredServer"
import {
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Exit,
  Layer,
  Logger,
  LogLevel,
  Option,
  Redacted,
  Scope,
  Stream,
  SubscriptionRef
} from "effect"
import { Discovery, type Instance } from "../src/Discovery.js"
import * as DiscoveryConsul from "../src/DiscoveryConsul.js"
import * as Registration from "../src/Registration.js"
import { discoveryContract } from "./DiscoveryContract.js"

const settings = (
  httpAddr: string,
  overrides: Partial<DiscoveryConsul.ConsulConfig> = {}
): DiscoveryConsul.ConsulConfig => ({
  httpAddr,
  httpToken: Option.none(),
  checkTtl: Duration.seconds(1),
  deregisterCriticalAfter: Duration.seconds(1),
  watchWait: Duration.seconds(30),
  ...overrides
})

const quiet = Logger.minimumLogLevel(LogLevel.None)

/** The adapter, over a real HTTP client, against the double in context. */
const adapterOn = (overrides: Partial<DiscoveryConsul.ConsulConfig> = {}, options: DiscoveryConsul.Options = {}) =>
  Layer.unwrapEffect(Effect.map(ConsulAgent, (agent) => DiscoveryConsul.layer(settings(agent.url, overrides), options)))
    .pipe(
      Layer.provide(FetchHttpClient.layer)
    )

// The agent's reaper settings shrunk so that removal after being critical takes seconds, not minutes.
const fastReaper = { checkDeregisterIntervalMin: "1 second", checkReapInterval: "100 millis" } as const
// Removal comes 4 seconds after an instance turns critical: later than the contract's one-second margins past the TTL.

discoveryContract(
  "Consul (agent API double)",
  adapterOn({ deregisterCriticalAfter: Duration.seconds(4) }).pipe(Layer.provide(ConsulAgent.layer(fastReaper))),
  {
    listedBy: "instances",
    elapse: Effect.sleep,
    deregisterCriticalAfter: "4 seconds",
    live: { patience: "10 seconds" }
  }
)

const realAgent = process.env.CONSUL_HTTP_ADDR
if (realAgent !== undefined && realAgent !== "") {
  // A real agent keeps its minimum of 1 minute and reaps every 30 seconds.
  const real = Layer.unwrapEffect(
    Effect.map(
      DiscoveryConsul.config,
      (config) =>
        DiscoveryConsul.layer({
          ...config,
          checkTtl: Duration.seconds(2),
          deregisterCriticalAfter: Duration.minutes(1)
        })
    )
  ).pipe(
    Layer.provide(FetchHttpClient.layer),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase)))
  )
  discoveryContract(`Consul agent at ${realAgent}`, real, {
    listedBy: "instances",
    elapse: Effect.sleep,
    deregisterCriticalAfter: "1 minute",
    live: { patience: "100 seconds" },
    timeout: "5 minutes"
  })
} else {
  RequiredServer.skipped("the Consul discovery contract on a real agent", "set CONSUL_HTTP_ADDR to run it")
  describe.skip("Discovery contract: real Consul agent (set CONSUL_HTTP_ADDR to run it)", () => {
    it("runs the contract against the agent at CONSUL_HTTP_ADDR", () => {})
  })
}

const raw = (agent: ConsulAgentDouble, path: string, init?: RequestInit) =>
  Effect.promise(async () => {
    const response = await fetch(`${agent.url}${path}`, init)
    return { status: response.status, headers: response.headers, body: await response.text() }
  })

/** Follows `watch(service)`; `until` waits (up to 10 seconds) for a view satisfying `ok`. */
const follow = (service: string) =>
  Effect.gen(function*() {
    const discovery = yield* Discovery
    const latest = yield* SubscriptionRef.make<ReadonlyArray<Instance> | undefined>(undefined)
    const views = yield* SubscriptionRef.make(0)
    yield* discovery.watch(service).pipe(
      Stream.runForEach((view) =>
        SubscriptionRef.set(latest, view).pipe(Effect.zipRight(SubscriptionRef.update(views, (n) => n + 1)))
      ),
      Effect.forkScoped
    )
    const until = (ok: (view: ReadonlyArray<Instance>) => boolean, what: string) =>
      latest.changes.pipe(
        Stream.filter((view) => view !== undefined && ok(view)),
        Stream.runHead,
        Effect.map((view) => Option.getOrThrow(view)!),
        Effect.timeoutFail({
          duration: "10 seconds",
          onTimeout: () => new Error(`watch(${service}) never showed ${what}`)
        }),
        Effect.orDie
      )
    return { until, views }
  })

/** Repeats `effect` until its result satisfies `until`, for at most `patience`. */
const waitFor = <A, E>(
  effect: Effect.Effect<A, E>,
  until: (a: A) => boolean,
  what: string,
  patience: Duration.DurationInput = "10 seconds"
) => {
  const poll: Effect.Effect<A, E> = Effect.flatMap(
    effect,
    (a) => until(a) ? Effect.succeed(a) : Effect.zipRight(Effect.sleep("20 millis"), Effect.suspend(() => poll))
  )
  return poll.pipe(
    Effect.timeoutFail({ duration: patience, onTimeout: () => new Error(`timed out waiting for ${what}`) }),
    Effect.orDie
  )
}

const healthQueries = (agent: ConsulAgentDouble, service: string) =>
  Effect.map(
    agent.requests,
    (all) => all.filter((r) => r.method === "GET" && r.path === `/v1/health/service/${service}`)
  )

/** Waits until the watch of `service` waits on a blocking query at the service's current index. */
const blockingQueryInFlight = (agent: ConsulAgentDouble, service: string) =>
  Effect.gen(function*() {
    const current = (yield* raw(agent, `/v1/health/service/${service}`)).headers.get("x-consul-index")
    yield* waitFor(healthQueries(agent, service), (queries) =>
      queries.some((q) => q.query.get("index") === current), `a blocking query at index ${current}`)
  })

describe("Consul adapter", () => {
  // Instances registered here without Registration's heartbeats: a TTL long enough for every test.
  layer(
    Layer.mergeAll(adapterOn({ checkTtl: Duration.minutes(1) }), quiet).pipe(
      Layer.provideMerge(ConsulAgent.layer({ nodeAddress: "192.0.2.87" }))
    ),
    {
      excludeTestServices: true,
      timeout: "60 seconds"
    }
  )("against the agent API double", (it) => {
    it.scoped("registers a service with a TTL check that passes at once", () =>
      Effect.gen(function*() {
        const agent = yield* ConsulAgent
        const discovery = yield* Discovery
        yield* discovery.register({ id: "shape-1", service: "shape", host: "192.0.2.5", port: 8092 })
        const answer = yield* raw(agent, "/v1/health/service/shape")
        const [entry] = JSON.parse(answer.body)
        assert.deepInclude(entry.Service, { ID: "shape-1", Service: "shape", Address: "192.0.2.5", Port: 8092 })
        const check = entry.Checks.find((c: { CheckID: string }) => c.CheckID === "service:shape-1")
        assert.strictEqual(check.Status, "passing")
        assert.strictEqual(check.Type, "ttl")
        const registration = (yield* agent.requests).find((r) => r.path === "/v1/agent/service/register")
        assert.isDefined(registration)
        yield* discovery.deregister("shape-1")
      }))

    it.scoped("an instance registered without an address is reached at its node's address", () =>
      Effect.gen(function*() {
        const agent = yield* ConsulAgent
        const discovery = yield* Discovery
        const put = yield* raw(agent, "/v1/agent/service/register", {
          method: "PUT",
          body: JSON.stringify({ ID: "bare-1", Name: "bare", Port: 9000, Check: { TTL: "10s", Status: "passing" } })
        })
        assert.strictEqual(put.status, 200)
        assert.deepStrictEqual(yield* discovery.healthy("bare"), [{
          id: "bare-1",
          service: "bare",
          host: "192.0.2.87",
          port: 9000
        }])
        yield* discovery.deregister("bare-1")
      }))

    it.scoped("watch waits on blocking queries: one query per change, not a poll", () =>
      Effect.gen(function*() {
        const agent = yield* ConsulAgent
        const discovery = yield* Discovery
        const view = yield* follow("blocking")
        yield* view.until((v) => v.length === 0, "[]")
        for (const n of [1, 2, 3]) {
          yield* discovery.register({ id: `blocking-${n}`, service: "blocking", host: "192.0.2.1", port: 7000 + n })
          yield* view.until((v) => v.length === n, `${n} instances`)
        }
        const queries = yield* healthQueries(agent, "blocking")
        // The first read, then one blocking query answered per change, plus the one now waiting.
        assert.isAtMost(queries.length, 5, queries.map((q) => q.query.toString()).join(" | "))
        const blocking = queries.slice(1)
        assert.isTrue(blocking.every((q) =>
          Number(q.query.get("index")) > 0 && q.query.get("wait") === "30000ms" && q.query.has("passing")
        ))
        for (const n of [1, 2, 3]) {
          yield* discovery.deregister(`blocking-${n}`)
        }
      }))

    it.scoped("an index that goes backwards (a restored snapshot) restarts the watch at once", () =>
      Effect.gen(function*() {
        const agent = yield* ConsulAgent
        const discovery = yield* Discovery
        const view = yield* follow("restored")
        yield* discovery.register({ id: "restored-1", service: "restored", host: "192.0.2.1", port: 7001 })
        yield* view.until((v) => v.length === 1, "the first instance")
        yield* blockingQueryInFlight(agent, "restored")
        yield* agent.restoreEmptySnapshot
        yield* view.until((v) => v.length === 0, "the empty state after the restore")
        // The index is now below what the watch last saw: without a reset, its next
        // query would block for the whole 30-second wait and miss this registration.
        yield* discovery.register({ id: "restored-2", service: "restored", host: "192.0.2.1", port: 7002 })
        const [found] = yield* view.until((v) => v.length === 1, "the registration after the restore")
        assert.strictEqual(found?.id, "restored-2")
        yield* discovery.deregister("restored-2")
      }))
  })

  layer(
    Layer.mergeAll(
      adapterOn({ checkTtl: Duration.minutes(1) }, { backoff: "200 millis", maxBackoff: "2 seconds" }),
      quiet
    ).pipe(Layer.provideMerge(ConsulAgent.layer())),
    { excludeTestServices: true, timeout: "60 seconds" }
  )("an agent that cannot answer", (it) => {
    it.scoped("keeps the last view, retries with growing delays, and recovers", () =>
      Effect.gen(function*() {
        const agent = yield* ConsulAgent
        const discovery = yield* Discovery
        yield* discovery.register({ id: "outage-1", service: "outage", host: "192.0.2.1", port: 7001 })
        const view = yield* follow("outage")
        yield* view.until((v) => v.length === 1, "the instance")
        yield* blockingQueryInFlight(agent, "outage")
        const viewsBefore = yield* SubscriptionRef.get(view.views)
        const start = Date.now()
        // The waiting blocking query fails at once; every retry fails until the agent is back.
        yield* agent.setUnavailable(true)
        const retries = yield* waitFor(
          // The adapter's queries alone (it always asks for passing instances): the test's own
          // look at the index, a millisecond before `start`, may carry the same timestamp.
          Effect.map(
            healthQueries(agent, "outage"),
            (queries) => queries.filter((q) => q.at >= start && q.query.has("passing"))
          ),
          (queries) => queries.length >= 4,
          "four retries",
          "15 seconds"
        )
        // Delays of 200, 400, 800 and 1600 ms between attempts, each shortened by at most 20 % of jitter.
        const gaps = retries.slice(0, 4).map((q, i) => q.at - (i === 0 ? start : retries[i - 1]!.at))
        for (const [i, minimum] of [200, 400, 800, 1600].entries()) {
          assert.isAtLeast(gaps[i]!, 0.8 * minimum - 5, `gap ${i} in ${gaps}`)
        }
        // After a failure the watch asks afresh (no index) rather than blocking on what it knew.
        assert.isTrue(retries.every((q) => !q.query.has("index")))
        // Nothing was emitted meanwhile: consumers keep their last view.
        assert.strictEqual(yield* SubscriptionRef.get(view.views), viewsBefore)
        yield* agent.setUnavailable(false)
        yield* discovery.register({ id: "outage-2", service: "outage", host: "192.0.2.1", port: 7002 })
        yield* view.until((v) => v.length === 2, "both instances after the outage")
        yield* discovery.deregister("outage-1")
        yield* discovery.deregister("outage-2")
      }))
  })

  layer(
    Layer.mergeAll(
      adapterOn({ httpToken: Option.some(Redacted.make("s3cr3t-token")) }),
      quiet
    ).pipe(Layer.provideMerge(ConsulAgent.layer({ aclToken: "s3cr3t-token" }))),
    { excludeTestServices: true, timeout: "60 seconds" }
  )("with ACLs", (it) => {
    it.scoped("sends the token in a header, never in the URL", () =>
      Effect.gen(function*() {
        const agent = yield* ConsulAgent
        const discovery = yield* Discovery
        yield* discovery.register({ id: "acl-1", service: "acl", host: "192.0.2.1", port: 7001 })
        assert.lengthOf(yield* discovery.healthy("acl"), 1)
        yield* discovery.deregister("acl-1")
        assert.isTrue((yield* agent.requests).every((r) => !r.query.has("token")))
      }))

    it.scoped("without the token the agent refuses, and the error says so", () =>
      Effect.gen(function*() {
        const agent = yield* ConsulAgent
        const anonymous = Context.get(
          yield* Layer.build(DiscoveryConsul.layer(settings(agent.url)).pipe(Layer.provide(FetchHttpClient.layer))),
          Discovery
        )
        const error = yield* Effect.flip(
          anonymous.register({ id: "acl-2", service: "acl", host: "192.0.2.1", port: 7002 })
        )
        assert.include(error.message, "discovery register failed: Consul answered 403")
      }))
  })

  layer(
    Layer.mergeAll(adapterOn({ checkTtl: Duration.seconds(3) }), quiet).pipe(Layer.provideMerge(ConsulAgent.layer())),
    {
      excludeTestServices: true,
      timeout: "60 seconds"
    }
  )("with Registration", (it) => {
    it.scoped("a graceful stop deregisters the service itself, not only its check", () =>
      Effect.gen(function*() {
        const agent = yield* ConsulAgent
        const discovery = yield* Discovery
        const scope = yield* Scope.make()
        yield* Layer.buildWithScope(
          Registration.layer({ service: "stopping", host: "192.0.2.1", port: 7001 }).pipe(
            Layer.provide(Layer.succeed(Discovery, discovery))
          ),
          scope
        )
        assert.lengthOf(yield* discovery.healthy("stopping"), 1)
        yield* Scope.close(scope, Exit.void)
        // Without ?passing: a crashed instance would still be listed (critical); a stopped one is not at all.
        assert.deepStrictEqual(JSON.parse((yield* raw(agent, "/v1/health/service/stopping")).body), [])
      }))

    it.scoped("heartbeats keep the instance passing well past its TTL", () =>
      Effect.gen(function*() {
        const discovery = yield* Discovery
        const scope = yield* Scope.make()
        yield* Layer.buildWithScope(
          Registration.layer({ service: "beating", host: "192.0.2.1", port: 7001 }).pipe(
            Layer.provide(Layer.succeed(Discovery, discovery))
          ),
          scope
        )
        const view = yield* follow("beating")
        yield* view.until((v) => v.length === 1, "the instance")
        const views = yield* SubscriptionRef.get(view.views)
        yield* Effect.sleep(Duration.times(discovery.ttl, 2))
        // Still one instance, and the view never changed: no flapping through critical.
        assert.lengthOf(yield* discovery.healthy("beating"), 1)
        assert.strictEqual(yield* SubscriptionRef.get(view.views), views)
        yield* Scope.close(scope, Exit.void)
      }))

    it.scoped("an instance the agent has forgotten registers again on its next heartbeat", () =>
      Effect.gen(function*() {
        const agent = yield* ConsulAgent
        const discovery = yield* Discovery
        const scope = yield* Scope.make()
        yield* Layer.buildWithScope(
          Registration.layer({ service: "forgotten", host: "192.0.2.1", port: 7001 }).pipe(
            Layer.provide(Layer.succeed(Discovery, discovery))
          ),
          scope
        )
        assert.lengthOf(yield* discovery.healthy("forgotten"), 1)
        yield* agent.restoreEmptySnapshot
        assert.lengthOf(yield* discovery.healthy("forgotten"), 0)
        // The next heartbeat is refused (unknown check), so Registration registers again.
        yield* waitFor(
          discovery.healthy("forgotten"),
          (instances) => instances.length === 1,
          "the instance registered again"
        )
        yield* Scope.close(scope, Exit.void)
      }))
  })
})

describe("Consul config", () => {
  const read = (env: Record<string, string>) =>
    DiscoveryConsul.config.pipe(
      Effect.withConfigProvider(
        ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }).pipe(ConfigProvider.constantCase)
      )
    )

  it.effect("defaults: the local agent, a 10-second TTL, removal after 1 minute critical", () =>
    Effect.gen(function*() {
      const config = yield* read({})
      assert.strictEqual(config.httpAddr, "http://127.0.0.1:8500")
      assert.isTrue(Option.isNone(config.httpToken))
      assert.deepStrictEqual(config.checkTtl, Duration.seconds(10))
      assert.deepStrictEqual(config.deregisterCriticalAfter, Duration.minutes(1))
      assert.deepStrictEqual(config.watchWait, Duration.minutes(1))
    }))

  it.effect("CONSUL_HTTP_ADDR as Consul's own tools take it: host:port means http", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        (yield* read({ CONSUL_HTTP_ADDR: "consul.service:8500" })).httpAddr,
        "http://consul.service:8500"
      )
      assert.strictEqual(
        (yield* read({ CONSUL_HTTP_ADDR: "https://192.0.2.2:8501/" })).httpAddr,
        "https://192.0.2.2:8501"
      )
      const error = String(yield* Effect.flip(read({ CONSUL_HTTP_ADDR: "ftp://192.0.2.2" })))
      assert.include(error, "consul.httpAddr")
      assert.include(error, "Expected an http(s) URL or host:port")
    }))

  it.effect("the token is redacted; durations are checked", () =>
    Effect.gen(function*() {
      const config = yield* read({ CONSUL_HTTP_TOKEN: "s3cr3t", CONSUL_CHECK_TTL: "5 seconds" })
      assert.strictEqual(Redacted.value(Option.getOrThrow(config.httpToken)), "s3cr3t")
      assert.notInclude(String(config.httpToken), "s3cr3t")
      assert.deepStrictEqual(config.checkTtl, Duration.seconds(5))
      assert.include(
        String(yield* Effect.flip(read({ CONSUL_CHECK_TTL: "10 millis" }))),
        "Expected a duration from 1 second to 1 hour"
      )
      assert.include(
        String(yield* Effect.flip(read({ CONSUL_WATCH_WAIT: "10 minutes" }))),
        "Expected a duration from 1 second to 5 minutes"
      )
    }))
})
