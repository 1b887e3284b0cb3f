/**
 * The Consul agent API behaviours movieapp relies on (STACK.md, "Consul"), over
 * HTTP: run against the test double, and against a real agent whenever
 * CONSUL_HTTP_ADDR is set, so that the double stays honest.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Duration, Effect, Layer } from "effect"
import { ConsulAgent, parseGoDuration } from "../src/ConsulAgentDouble.js"
import * as RequiredServer from "../src/RequiredServer.js"

interface Target {
  readonly url: string
  /** The agent's least DeregisterCriticalServiceAfter, and how often it reaps. */
  readonly deregisterMin: Duration.Duration
  readonly reapInterval: Duration.Duration
}
class Agent extends Context.Tag("test/Agent")<Agent, Target>() {}

const call = (method: string, path: string, body?: unknown) =>
  Effect.flatMap(Agent, (agent) =>
    Effect.promise(async () => {
      const response = await fetch(`${agent.url}${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        headers: process.env.CONSUL_HTTP_TOKEN ? { "X-Consul-Token": process.env.CONSUL_HTTP_TOKEN } : {}
      })
      return {
        status: response.status,
        index: Number(response.headers.get("x-consul-index")),
        body: await response.text()
      }
    }))

interface Entry {
  readonly Node: { readonly Address: string }
  readonly Service: { readonly ID: string; readonly Service: string; readonly Address: string; readonly Port: number }
  readonly Checks: ReadonlyArray<
    { readonly CheckID: string; readonly Name: string; readonly Status: string; readonly Output: string }
  >
}
const health = (service: string, query = "") =>
  Effect.map(
    call("GET", `/v1/health/service/${service}${query}`),
    (answer) => ({ ...answer, entries: JSON.parse(answer.body) as ReadonlyArray<Entry> })
  )

const poll = <A, R>(
  effect: Effect.Effect<A, never, R>,
  until: (a: A) => boolean,
  what: string,
  patience: Duration.DurationInput
) => {
  const loop: Effect.Effect<A, never, R> = Effect.flatMap(
    effect,
    (a) => until(a) ? Effect.succeed(a) : Effect.zipRight(Effect.sleep("50 millis"), Effect.suspend(() => loop))
  )
  return loop.pipe(
    Effect.timeoutFail({ duration: patience, onTimeout: () => new Error(`timed out waiting for ${what}`) }),
    Effect.orDie
  )
}

const agentApi = (name: string, target: Layer.Layer<Agent>, timeout: Duration.DurationInput) =>
  layer(target, { excludeTestServices: true, timeout })(`Consul agent API: ${name}`, (it) => {
    const run = Math.random().toString(36).slice(2, 8)
    const svc = (s: string) => `api-${run}-${s}`
    const ttlCheck = (extra: Record<string, unknown> = {}) => ({ TTL: "30s", ...extra })

    it.effect("PUTs answer 200 with an empty body; the ID defaults to the name; the check is service:<id>", () =>
      Effect.gen(function*() {
        const name = svc("defaults")
        const put = yield* call("PUT", "/v1/agent/service/register", {
          Name: name,
          Port: 8000,
          Check: ttlCheck({ Status: "passing" })
        })
        assert.deepStrictEqual([put.status, put.body], [200, ""])
        const [entry] = (yield* health(name)).entries
        assert.strictEqual(entry?.Service.ID, name)
        const check = entry?.Checks.find((c) => c.CheckID === `service:${name}`)
        assert.strictEqual(check?.Name, `Service '${name}' check`)
        assert.strictEqual(check?.Status, "passing")
        const gone = yield* call("PUT", `/v1/agent/service/deregister/${name}`)
        assert.deepStrictEqual([gone.status, gone.body], [200, ""])
      }))

    it.effect("a TTL check starts critical unless Status is given; ?passing drops it", () =>
      Effect.gen(function*() {
        const name = svc("critical")
        yield* call("PUT", "/v1/agent/service/register", { ID: `${name}-1`, Name: name, Port: 8001, Check: ttlCheck() })
        yield* call("PUT", "/v1/agent/service/register", {
          ID: `${name}-2`,
          Name: name,
          Port: 8002,
          Check: ttlCheck({ Status: "passing" })
        })
        const all = yield* health(name)
        assert.deepStrictEqual(all.entries.map((e) => e.Service.ID).sort(), [`${name}-1`, `${name}-2`])
        assert.strictEqual(
          all.entries.find((e) => e.Service.ID === `${name}-1`)?.Checks.find((c) => c.CheckID === `service:${name}-1`)
            ?.Status,
          "critical"
        )
        const passing = yield* health(name, "?passing")
        assert.deepStrictEqual(passing.entries.map((e) => e.Service.ID), [`${name}-2`])
        for (const id of [`${name}-1`, `${name}-2`]) yield* call("PUT", `/v1/agent/service/deregister/${id}`)
      }))

    it.effect("?passing drops an entry whose check fails, and shows it again once it passes", () =>
      Effect.gen(function*() {
        const name = svc("failing")
        yield* call("PUT", "/v1/agent/service/register", {
          Name: name,
          Port: 8003,
          Check: ttlCheck({ Status: "passing" })
        })
        assert.lengthOf((yield* health(name, "?passing")).entries, 1)
        const failed = yield* call("PUT", `/v1/agent/check/fail/service:${name}?note=down`)
        assert.deepStrictEqual([failed.status, failed.body], [200, ""])
        yield* poll(
          health(name, "?passing"),
          (a) => a.entries.length === 0,
          "the failure to hide the entry",
          "10 seconds"
        )
        assert.strictEqual(
          (yield* health(name)).entries[0]?.Checks.find((c) => c.CheckID === `service:${name}`)?.Output,
          "down"
        )
        yield* call("PUT", `/v1/agent/check/pass/service:${name}`)
        yield* poll(health(name, "?passing"), (a) => a.entries.length === 1, "the pass", "10 seconds")
        yield* call("PUT", `/v1/agent/service/deregister/${name}`)
      }))

    it.effect("without an address, Service.Address is empty and Node.Address is set; an unknown service is []", () =>
      Effect.gen(function*() {
        const name = svc("address")
        yield* call("PUT", "/v1/agent/service/register", {
          Name: name,
          Port: 8004,
          Check: ttlCheck({ Status: "passing" })
        })
        const [entry] = (yield* health(name)).entries
        assert.strictEqual(entry?.Service.Address, "")
        assert.isNotEmpty(entry?.Node.Address)
        const unknown = yield* health(svc("nobody"))
        assert.deepStrictEqual([unknown.status, unknown.body.trim()], [200, "[]"])
        yield* call("PUT", `/v1/agent/service/deregister/${name}`)
      }))

    it.effect("X-Consul-Index rises; a blocking query answers on a change, or when its wait ends", () =>
      Effect.gen(function*() {
        const name = svc("blocking")
        const before = yield* health(name)
        yield* call("PUT", "/v1/agent/service/register", {
          Name: name,
          Port: 8005,
          Check: ttlCheck({ Status: "passing" })
        })
        const registered = yield* poll(health(name), (a) => a.entries.length === 1, "the registration", "10 seconds")
        assert.isAbove(registered.index, before.index)
        // Unchanged: waits the whole wait, then answers with the same index.
        const started = Date.now()
        const idle = yield* health(name, `?index=${registered.index}&wait=1s`)
        assert.isAtLeast(Date.now() - started, 1000)
        assert.strictEqual(idle.index, registered.index)
        // A pass that changes nothing is not a change either.
        yield* call("PUT", `/v1/agent/check/pass/service:${name}`)
        const fork = yield* Effect.fork(health(name, `?index=${registered.index}&wait=30s`))
        // Time for the query to reach the agent and block; the answer is the same if it has not yet.
        yield* Effect.sleep("200 millis")
        yield* call("PUT", `/v1/agent/check/fail/service:${name}?note=down`)
        const changed = yield* fork.await.pipe(Effect.flatten)
        assert.isAbove(changed.index, registered.index)
        assert.strictEqual(changed.entries[0]?.Checks.find((c) => c.CheckID === `service:${name}`)?.Status, "critical")
        yield* call("PUT", `/v1/agent/service/deregister/${name}`)
      }))

    it.effect("a check not passed within its TTL turns critical; registering again keeps a check's status", () =>
      Effect.gen(function*() {
        const name = svc("ttl")
        const definition = { Name: name, Port: 8006, Check: { TTL: "1s", Status: "passing" } }
        yield* call("PUT", "/v1/agent/service/register", definition)
        const expired = yield* poll(
          health(name),
          (a) => a.entries[0]?.Checks.some((c) => c.CheckID === `service:${name}` && c.Status === "critical") ?? false,
          "the TTL to expire",
          "10 seconds"
        )
        assert.include(expired.entries[0]?.Checks.find((c) => c.CheckID === `service:${name}`)?.Output, "TTL expired")
        yield* call("PUT", "/v1/agent/service/register", definition)
        assert.lengthOf((yield* health(name, "?passing")).entries, 0)
        yield* call("PUT", `/v1/agent/check/pass/service:${name}`)
        yield* poll(health(name, "?passing"), (a) => a.entries.length === 1, "the pass", "10 seconds")
        yield* call("PUT", `/v1/agent/service/deregister/${name}`)
      }))

    it.effect("unknown ids are 404 with Consul's messages; bad registrations are 400", () =>
      Effect.gen(function*() {
        const check = yield* call("PUT", `/v1/agent/check/pass/service:${svc("nobody")}`)
        assert.strictEqual(check.status, 404)
        assert.include(check.body, "Unknown check ID")
        const service = yield* call("PUT", `/v1/agent/service/deregister/${svc("nobody")}`)
        assert.strictEqual(service.status, 404)
        assert.include(service.body, "Unknown service ID")
        const wildcard = yield* call("PUT", "/v1/agent/service/register", {
          Name: svc("bad"),
          Address: "0.0.0.0",
          Port: 1,
          Check: ttlCheck()
        })
        assert.deepStrictEqual([wildcard.status, wildcard.body.trim()], [400, "Invalid service address"])
        const nameless = yield* call("PUT", "/v1/agent/service/register", { Port: 1 })
        assert.deepStrictEqual([nameless.status, nameless.body.trim()], [400, "Missing service name"])
        const noTtl = yield* call("PUT", "/v1/agent/service/register", {
          Name: svc("bad"),
          Port: 1,
          Check: { Status: "passing" }
        })
        assert.strictEqual(noTtl.status, 400)
      }))

    it.effect("DeregisterCriticalServiceAfter below the agent's minimum is raised to it", () =>
      Effect.gen(function*() {
        const { deregisterMin, reapInterval } = yield* Agent
        const name = svc("reaped")
        yield* call("PUT", "/v1/agent/service/register", {
          Name: name,
          Port: 8007,
          Check: { TTL: "1s", Status: "passing", DeregisterCriticalServiceAfter: "100ms" }
        })
        yield* poll(health(name, "?passing"), (a) => a.entries.length === 0, "critical", "10 seconds")
        const criticalAt = Date.now()
        const gone = yield* poll(
          health(name),
          (a) => a.entries.length === 0,
          "the removal",
          Duration.sum(Duration.sum(deregisterMin, reapInterval), Duration.seconds(10))
        )
        assert.strictEqual(gone.entries.length, 0)
        // 100ms was asked; the minimum applies.
        assert.isAtLeast(Date.now() - criticalAt, Duration.toMillis(deregisterMin) - 100)
      }))
  })

agentApi(
  "test double",
  Layer.effect(
    Agent,
    Effect.map(
      ConsulAgent,
      (agent) => ({ url: agent.url, deregisterMin: Duration.seconds(2), reapInterval: Duration.millis(100) })
    )
  ).pipe(
    Layer.provide(ConsulAgent.layer({ checkDeregisterIntervalMin: "2 seconds", checkReapInterval: "100 millis" }))
  ),
  "60 seconds"
)

const realAgent = process.env.CONSUL_HTTP_ADDR
if (realAgent !== undefined && realAgent !== "") {
  agentApi(
    `real agent at ${realAgent}`,
    Layer.succeed(Agent, {
      url: /^https?:\/\//.test(realAgent) ? realAgent.replace(/\/+$/, "") : `http://${realAgent}`,
      deregisterMin: Duration.minutes(1),
      reapInterval: Duration.seconds(30)
    }),
    "5 minutes"
  )
} else {
  RequiredServer.skipped("the Consul agent API checks on a real agent", "set CONSUL_HTTP_ADDR to run it")
  describe.skip("Consul agent API: real agent (set CONSUL_HTTP_ADDR to run it)", () => {
    it("runs these checks against the agent at CONSUL_HTTP_ADDR", () => {})
  })
}

describe("Consul agent API double", () => {
  layer(ConsulAgent.layer({ aclToken: "s3cr3t" }), { excludeTestServices: true })("with ACLs", (it) => {
    it.effect("refuses requests without the token the adapter sends (X-Consul-Token), or with another", () =>
      Effect.gen(function*() {
        const agent = yield* ConsulAgent
        const status = (path: string, headers: Record<string, string> = {}) =>
          Effect.promise(() => fetch(`${agent.url}${path}`, { headers }).then((r) => r.status))
        assert.strictEqual(yield* status("/v1/health/service/x"), 403)
        assert.strictEqual(yield* status("/v1/health/service/x", { "X-Consul-Token": "wrong" }), 403)
        assert.strictEqual(yield* status("/v1/health/service/x", { "X-Consul-Token": "s3cr3t" }), 200)
      }))
  })

  it("reads durations as Go does", () => {
    assert.strictEqual(parseGoDuration("10s"), 10_000)
    assert.strictEqual(parseGoDuration("1m30s"), 90_000)
    assert.strictEqual(parseGoDuration("1.5s"), 1500)
    assert.strictEqual(parseGoDuration("250ms"), 250)
    assert.strictEqual(parseGoDuration("0"), 0)
    assert.isUndefined(parseGoDuration("10"))
    assert.isUndefined(parseGoDuration("ten seconds"))
  })
})
