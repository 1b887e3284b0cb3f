/**
 * A deployment with several instances, every service in its own process with
 * `DISCOVERY=consul` against the Consul agent API double: the gateway spreads
 * calls over two rating instances, survives one of them being killed abruptly,
 * and the dead instance leaves the healthy set when its TTL check goes critical.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ConsulAgentDouble from "@movieapp/testkit/ConsulAgentDouble"
import * as ServiceProcess from "@movieapp/testkit/ServiceProcess"
import { Duration, Effect, Fiber, Ref } from "effect"

interface Entry {
  readonly Service: { readonly ID: string; readonly Port: number }
}

const environment = (agent: ConsulAgentDouble.ConsulAgentDouble) => ({
  DISCOVERY: "consul",
  CONSUL_HTTP_ADDR: agent.url,
  CONSUL_CHECK_TTL: "2 seconds",
  CONSUL_DEREGISTER_CRITICAL_AFTER: "1 second",
  SERVER_HOST: "127.0.0.1",
  SERVER_GRPC_PORT: "0",
  SERVER_HTTP_PORT: "0",
  LOG_LEVEL: "Info"
})

const request = (url: string, init?: RequestInit) =>
  Effect.tryPromise(async () => {
    const response = await fetch(url, init)
    return { status: response.status, body: await response.text() }
  })

const put = (instance: ServiceProcess.ServiceProcess, path: string, body: unknown) =>
  request(`http://${instance.host}:${instance.port}${path}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body)
  }).pipe(Effect.filterOrFail((r) => r.status === 200, (r) => new Error(`PUT ${path}: ${r.status} ${r.body}`)))

const instancesOf = (agent: ConsulAgentDouble.ConsulAgentDouble, service: string, passing: boolean) =>
  request(`${agent.url}/v1/health/service/${service}${passing ? "?passing" : ""}`).pipe(
    Effect.map((r) => JSON.parse(r.body) as ReadonlyArray<Entry>),
    Effect.orDie
  )

const waitUntil = <A>(effect: Effect.Effect<A>, until: (a: A) => boolean, what: string, patience: Duration.DurationInput = "30 seconds") => {
  const loop: Effect.Effect<A> = Effect.flatMap(effect, (a) => until(a) ? Effect.succeed(a) : Effect.zipRight(Effect.sleep("25 millis"), Effect.suspend(() => loop)))
  return loop.pipe(Effect.timeoutFail({ duration: patience, onTimeout: () => new Error(`timed out waiting for ${what}`) }), Effect.orDie)
}

describe("several instances with Consul discovery (agent API double)", () => {
  it.live("two rating instances behind the gateway: one is killed, the gateway keeps answering, the dead one leaves the healthy set", () =>
    Effect.gen(function* () {
      // The agent's minimum for DeregisterCriticalServiceAfter shrunk from 1 minute, so the test sees the removal too.
      const agent = yield* ConsulAgentDouble.make({ checkDeregisterIntervalMin: "1 second", checkReapInterval: "200 millis" })
      const env = environment(agent)
      const [metadata, ratingA, ratingB, movie] = yield* Effect.all([
        ServiceProcess.start("metadata", env),
        ServiceProcess.start("rating", env),
        ServiceProcess.start("rating", env),
        ServiceProcess.start("movie", env)
      ], { concurrency: "unbounded" })

      yield* put(metadata, "/metadata", { id: "heat", title: "Heat", description: "", director: "Michael Mann" })
      // Each instance keeps its ratings in memory: both get the same ones, so either can answer.
      for (const rating of [ratingA, ratingB]) {
        yield* put(rating, "/rating", { recordId: "heat", recordType: "movie", userId: "ann", value: 8 })
        yield* put(rating, "/rating", { recordId: "heat", recordType: "movie", userId: "bob", value: 9 })
      }
      yield* waitUntil(instancesOf(agent, "rating", true), (entries) => entries.length === 2, "two passing rating instances")

      const answered = yield* Ref.make(0)
      const failures = yield* Ref.make<ReadonlyArray<string>>([])
      const call = request(`http://${movie.host}:${movie.port}/movie?id=heat`).pipe(
        Effect.flatMap((r) =>
          r.status === 200 && JSON.parse(r.body).ratingsCount === 2
            ? Ref.update(answered, (n) => n + 1)
            : Ref.update(failures, (all) => [...all, `${r.status} ${r.body}`])),
        Effect.catchAll((error) => Ref.update(failures, (all) => [...all, String(error)]))
      )
      // Four callers at once, for as long as the test runs.
      const load = yield* Effect.fork(Effect.all(Array.from({ length: 4 }, () => Effect.forever(call)), { concurrency: "unbounded" }))
      yield* waitUntil(Ref.get(answered), (n) => n >= 200, "200 answers before the kill")

      yield* ratingA.kill("SIGKILL")
      const killedAt = Date.now()
      const answeredAtKill = yield* Ref.get(answered)
      assert.isNull(yield* ratingA.exited)
      // Only the TTL check can take it out: nothing deregistered it.
      yield* waitUntil(instancesOf(agent, "rating", true), (entries) => entries.every((e) => e.Service.Port !== ratingA.port), "the dead instance to leave the passing set")
      const leftAfter = Date.now() - killedAt
      const answeredMeanwhile = (yield* Ref.get(answered)) - answeredAtKill
      const answeredAtLeave = yield* Ref.get(answered)
      yield* waitUntil(Ref.get(answered), (n) => n >= answeredAtLeave + 200, "200 answers after the dead instance left")
      yield* Fiber.interrupt(load)

      const failed = yield* Ref.get(failures)
      const total = (yield* Ref.get(answered)) + failed.length
      // The gateway did meet the dead instance, and skipped it (its log says so each time).
      const skips = (yield* movie.logs).filter((l) => l.message === "instance unreachable; skipping it" && l.annotations.service === "rating")
      console.log(
        `several instances: ${total} gateway calls, ${failed.length} failed; rating instance killed, out of the passing set after ` +
          `${leftAfter} ms (TTL 2 s), ${answeredMeanwhile} calls answered in between; the gateway skipped the dead instance ${skips.length} times`
      )
      assert.deepStrictEqual(failed, [], "gateway calls failed")
      assert.isAbove(answeredMeanwhile, 0, "calls were made while the dead instance was still listed")
      assert.isAbove(skips.length, 0, "the gateway never tried the dead instance")
      // The survivor is untouched; the dead one is removed altogether after DeregisterCriticalServiceAfter.
      const remaining = yield* waitUntil(instancesOf(agent, "rating", false), (entries) => entries.length === 1, "the dead instance to be removed")
      assert.strictEqual(remaining[0]?.Service.Port, ratingB.port)
    }).pipe(Effect.scoped), 120_000)

  it.live("SIGTERM: the instance deregisters its service from Consul before it exits", () =>
    Effect.gen(function* () {
      const agent = yield* ConsulAgentDouble.make()
      // A long TTL: only an explicit deregistration can make it disappear within the test.
      const rating = yield* ServiceProcess.start("rating", { ...environment(agent), CONSUL_CHECK_TTL: "1 minute" })
      assert.lengthOf(yield* instancesOf(agent, "rating", true), 1)
      yield* rating.kill("SIGTERM")
      assert.strictEqual(yield* rating.exited, 0)
      assert.deepStrictEqual(yield* instancesOf(agent, "rating", false), [])
    }).pipe(Effect.scoped), 60_000)
})
