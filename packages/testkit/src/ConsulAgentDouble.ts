/**
 * Test double of a Consul agent's HTTP API, over a real socket. No Consul binary
 * can be installed on the machines that run the tests, so this stands in for a
 * single dev-mode agent, implementing what the discovery adapter
 * (platform/DiscoveryConsul) calls and what the agent API suite
 * (test/ConsulAgentDouble.test.ts, run against a real agent too) checks, the way
 * Consul does it (see STACK.md, "Consul"):
 *
 * - `PUT /v1/agent/service/register` with one TTL `Check`: the service ID
 *   defaults to its name; the check id to `service:<id>`, its name to
 *   `Service '<name>' check`; a check starts `critical` unless `Status` is given,
 *   and registering again keeps the status it had; `DeregisterCriticalServiceAfter`
 *   below the agent's minimum (1m) is raised to it; a wildcard `Address`, a
 *   missing `Name` and a check without a TTL are refused (400).
 * - `PUT /v1/agent/service/deregister/<id>`, `PUT /v1/agent/check/{pass,fail}/<check id>`:
 *   404 with Consul's message for an unknown id.
 * - `GET /v1/health/service/<name>`: `[]` when empty, never `null`; `?passing`
 *   drops an entry when any of its checks (the node's `serfHealth` included) is not
 *   passing; `Service.Address` stays empty when none was registered (clients fall
 *   back to `Node.Address`); `X-Consul-Index` rises with every change; blocking
 *   queries with `index` and `wait` (default 5m, at most 10m, plus up to wait/16
 *   of jitter) answer when the service changes or the wait ends.
 * - A TTL check not passed within its TTL turns `critical` ("TTL expired"); every
 *   `checkReapInterval` the agent removes services critical for longer than their
 *   `DeregisterCriticalServiceAfter`.
 * - Every PUT answers an empty 200 body; errors are plain text.
 * - With `aclToken`, requests must carry it as the adapter sends it (`X-Consul-Token`): 403 otherwise.
 *
 * Beyond the API, a test can make the agent unavailable (every request answers
 * 500 `No cluster leader`) and restore an empty snapshot (state forgotten, the
 * index starts again lower, blocking queries answer at once), and read the log of
 * requests it received.
 */
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import {
  Clock,
  Context,
  Data,
  Duration,
  Effect,
  FiberMap,
  Layer,
  Random,
  Schedule,
  type Scope,
  Stream,
  SubscriptionRef
} from "effect"
import { createServer } from "node:http"

export interface Options {
  /** The node's address: what clients dial when a service registered no address. Default 127.0.0.1. */
  readonly nodeAddress?: string
  /** When set, ACLs are enforced: requests without this token are refused. */
  readonly aclToken?: string
  /** Consul's agent setting of that name: the least `DeregisterCriticalServiceAfter` honoured. Default 1 minute. */
  readonly checkDeregisterIntervalMin?: Duration.DurationInput
  /** Consul's agent setting of that name: how often critical services are reaped. Default 30 seconds. */
  readonly checkReapInterval?: Duration.DurationInput
}

export interface RecordedRequest {
  /** When it arrived, in epoch milliseconds. */
  readonly at: number
  readonly method: string
  readonly path: string
  readonly query: URLSearchParams
}

export interface ConsulAgentDouble {
  /** Base URL of the agent API, `http://127.0.0.1:<port>`. */
  readonly url: string
  /**
   * While on, every request answers 500 `No cluster leader` (the servers lost their
   * quorum), and so do the blocking queries that were waiting.
   */
  readonly setUnavailable: (unavailable: boolean) => Effect.Effect<void>
  /**
   * As a restore of an empty snapshot: registrations and checks are forgotten, the
   * index starts again below its previous value, and blocking queries answer at once.
   */
  readonly restoreEmptySnapshot: Effect.Effect<void>
  /** Every request received so far, oldest first. */
  readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
}

type Status = "passing" | "critical"

interface Service {
  readonly id: string
  readonly name: string
  readonly address: string
  readonly port: number
  readonly createIndex: number
  modifyIndex: number
}

/** A service's TTL check (one per service, as the adapter registers them). */
interface Check {
  readonly id: string
  readonly name: string
  readonly serviceId: string
  readonly serviceName: string
  readonly ttl: number
  readonly deregisterAfter: number | undefined
  status: Status
  output: string
  criticalSince: number | undefined
  readonly createIndex: number
  modifyIndex: number
}

/** An error answer, as Consul's handlers return it: a status and a plain-text reason. */
class HttpError extends Data.TaggedError("HttpError")<{ readonly status: number; readonly reason: string }> {}
const httpError = (status: number, reason: string) => new HttpError({ status, reason })

const NODE_NAME = "consul-double"
const maxQueryTime = 600_000
const defaultQueryTime = 300_000

const units: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000
}

/** Go's time.ParseDuration, in milliseconds ("1m30s", "1.5s", "250ms", "0"). */
export const parseGoDuration = (text: string): number | undefined => {
  if (text === "0" || text === "+0" || text === "-0") return 0
  const match = /^([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(text)
  if (match === null) return undefined
  let total = 0
  for (const [, amount, unit] of match[2]!.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(amount) * units[unit!]!
  }
  return match[1] === "-" ? -total : total
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const decodeFailed = (reason: string) => httpError(400, `Request decode failed: ${reason}`)

const durationField = (object: Record<string, unknown>, name: string): number | undefined => {
  const value = object[name]
  if (value === undefined || value === "") return undefined
  if (typeof value !== "string") throw decodeFailed(`${name}: expected a duration string`)
  const parsed = parseGoDuration(value)
  if (parsed === undefined) throw decodeFailed(`time: invalid duration "${value}"`)
  return parsed
}

const stringField = (object: Record<string, unknown>, name: string): string => {
  const value = object[name]
  if (value === undefined) return ""
  if (typeof value !== "string") throw decodeFailed(`${name}: expected a string`)
  return value
}

const isWildcard = (address: string) => address === "0.0.0.0" || address === "::" || address === "[::]"

export const make = (options: Options = {}): Effect.Effect<ConsulAgentDouble, never, Scope.Scope> =>
  Effect.gen(function*() {
    const nodeAddress = options.nodeAddress ?? "127.0.0.1"
    const deregisterMin = Duration.toMillis(options.checkDeregisterIntervalMin ?? "1 minute")
    const reapInterval = options.checkReapInterval ?? "30 seconds"

    const services = new Map<string, Service>()
    const checks = new Map<string, Check>()
    /** Index of the last removal per service name, so a service that emptied still has a rising index. */
    const removedAt = new Map<string, number>()
    const recorded: Array<RecordedRequest> = []
    let unavailable = false
    let index = 1
    let nodeIndex = 1
    /** Raised on a snapshot restore: blocking queries are abandoned, whatever their index. */
    let generation = 0
    const changes = yield* SubscriptionRef.make(0)
    const bump = () => {
      index += 1
      return index
    }
    const publish = SubscriptionRef.update(changes, (n) => n + 1)
    const timers = yield* FiberMap.make<string>()

    const serviceIndex = (name: string): number => {
      let max = removedAt.get(name) ?? 0
      for (const service of services.values()) {
        if (service.name === name) max = Math.max(max, service.modifyIndex)
      }
      for (const check of checks.values()) {
        if (check.serviceName === name) max = Math.max(max, check.modifyIndex)
      }
      return max === 0 ? index : max
    }

    const setStatus = (check: Check, status: Status, output: string, now: number): boolean => {
      if (check.status === status && check.output === output) return false
      if (status === "critical" && check.status !== "critical") check.criticalSince = now
      if (status !== "critical") check.criticalSince = undefined
      check.status = status
      check.output = output
      check.modifyIndex = bump()
      return true
    }

    /** (Re)arms a TTL check: critical unless updated within its TTL. */
    const armTtl = (check: Check) =>
      FiberMap.run(
        timers,
        check.id,
        Effect.sleep(Duration.millis(check.ttl)).pipe(
          Effect.zipRight(Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const current = checks.get(check.id)
            return current === check && setStatus(check, "critical", "TTL expired", now) ? publish : Effect.void
          }))
        )
      )

    const removeService = (id: string) =>
      Effect.gen(function*() {
        const service = services.get(id)
        if (service === undefined) return false
        services.delete(id)
        for (const [checkId, check] of checks) {
          if (check.serviceId === id) {
            checks.delete(checkId)
            yield* FiberMap.remove(timers, checkId)
          }
        }
        removedAt.set(service.name, bump())
        return true
      })

    const register = (body: unknown) =>
      Effect.gen(function*() {
        if (!isRecord(body)) throw decodeFailed("expected a JSON object")
        const name = stringField(body, "Name")
        if (name === "") throw httpError(400, "Missing service name")
        const address = stringField(body, "Address")
        if (isWildcard(address)) throw httpError(400, "Invalid service address")
        const id = stringField(body, "ID") || name
        const port = body.Port ?? 0
        if (typeof port !== "number" || !Number.isInteger(port)) throw decodeFailed("Port: expected an integer")
        const definition = body.Check
        if (!isRecord(definition)) throw httpError(400, "Invalid check: this test double takes one TTL Check")
        const ttl = durationField(definition, "TTL")
        if (ttl === undefined || ttl <= 0) throw httpError(400, "Invalid check: TTL must be > 0 for TTL checks")
        const deregisterAfter = durationField(definition, "DeregisterCriticalServiceAfter")
        const checkId = stringField(definition, "CheckID") || `service:${id}`

        const now = yield* Clock.currentTimeMillis
        const at = bump()
        const existing = services.get(id)
        services.set(id, { id, name, address, port, createIndex: existing?.createIndex ?? at, modifyIndex: at })
        if (existing !== undefined && existing.name !== name) removedAt.set(existing.name, at)
        // Registering again keeps what the check already knew (Consul's check state snapshot).
        const previous = checks.get(checkId)
        const status = previous?.status ?? (stringField(definition, "Status") === "passing" ? "passing" : "critical")
        const check: Check = {
          id: checkId,
          name: stringField(definition, "Name") || `Service '${name}' check`,
          serviceId: id,
          serviceName: name,
          ttl,
          deregisterAfter: deregisterAfter !== undefined && deregisterAfter > 0
            ? Math.max(deregisterAfter, deregisterMin)
            : undefined,
          status,
          output: previous?.output ?? "",
          criticalSince: status === "critical" ? (previous?.criticalSince ?? now) : undefined,
          createIndex: previous?.createIndex ?? at,
          modifyIndex: at
        }
        checks.set(check.id, check)
        yield* armTtl(check)
        yield* publish
      })

    const updateCheck = (checkId: string, status: Status, note: string) =>
      Effect.gen(function*() {
        const check = checks.get(checkId)
        if (check === undefined) {
          throw httpError(404, `Unknown check ID "${checkId}". Ensure that the check ID is passed, not the check name.`)
        }
        const now = yield* Clock.currentTimeMillis
        if (setStatus(check, status, note, now)) yield* publish
        yield* armTtl(check)
      })

    const deregister = (id: string) =>
      Effect.gen(function*() {
        if (!(yield* removeService(id))) {
          throw httpError(
            404,
            `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`
          )
        }
        yield* publish
      })

    const reap = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      let removed = false
      for (const check of [...checks.values()]) {
        if (check.deregisterAfter === undefined || check.criticalSince === undefined) continue
        if (now - check.criticalSince > check.deregisterAfter && (yield* removeService(check.serviceId))) removed = true
      }
      if (removed) yield* publish
    })
    yield* reap.pipe(Effect.repeat(Schedule.spaced(reapInterval)), Effect.forkScoped)

    const checkJson = (check: Check) => ({
      Node: NODE_NAME,
      CheckID: check.id,
      Name: check.name,
      Status: check.status,
      Output: check.output,
      ServiceID: check.serviceId,
      ServiceName: check.serviceName,
      Type: "ttl",
      CreateIndex: check.createIndex,
      ModifyIndex: check.modifyIndex
    })
    const serfHealth = () => ({
      Node: NODE_NAME,
      CheckID: "serfHealth",
      Name: "Serf Health Status",
      Status: "passing",
      Output: "Agent alive and reachable",
      ServiceID: "",
      ServiceName: "",
      Type: "",
      CreateIndex: nodeIndex,
      ModifyIndex: nodeIndex
    })
    const entries = (name: string, passingOnly: boolean) =>
      [...services.values()]
        .filter((service) => service.name === name)
        .sort((a, b) => a.id.localeCompare(b.id))
        .map((service) => ({ service, own: [...checks.values()].filter((c) => c.serviceId === service.id) }))
        .filter(({ own }) => !passingOnly || own.every((c) => c.status === "passing"))
        .map(({ own, service }) => ({
          Node: {
            Node: NODE_NAME,
            Address: nodeAddress,
            Datacenter: "dc1",
            CreateIndex: nodeIndex,
            ModifyIndex: nodeIndex
          },
          Service: {
            ID: service.id,
            Service: service.name,
            Address: service.address,
            Port: service.port,
            CreateIndex: service.createIndex,
            ModifyIndex: service.modifyIndex
          },
          Checks: [serfHealth(), ...own.map(checkJson)]
        }))

    const health = (name: string, query: URLSearchParams) =>
      Effect.gen(function*() {
        const passing = query.get("passing")
        const passingOnly = passing !== null && ["", "1", "t", "true"].includes(passing.toLowerCase())
        const minIndex = query.has("index") ? Number(query.get("index")) : 0
        if (!Number.isInteger(minIndex) || minIndex < 0) throw httpError(400, "Invalid index")
        let wait = defaultQueryTime
        if (query.has("wait")) {
          const parsed = parseGoDuration(query.get("wait")!)
          if (parsed === undefined || parsed < 0) throw httpError(400, "Invalid wait time")
          if (parsed > 0) wait = Math.min(parsed, maxQueryTime)
        }
        if (minIndex > 0 && serviceIndex(name) <= minIndex) {
          const jitter = yield* Random.nextIntBetween(0, Math.max(1, Math.floor(wait / 16)))
          const started = generation
          yield* changes.changes.pipe(
            Stream.filter(() => serviceIndex(name) > minIndex || generation !== started),
            Stream.take(1),
            Stream.runDrain,
            Effect.timeoutOption(Duration.millis(wait + jitter))
          )
          if (unavailable) return yield* httpError(500, "No cluster leader")
        }
        return HttpServerResponse.unsafeJson(entries(name, passingOnly), {
          headers: {
            "x-consul-index": String(serviceIndex(name)),
            "x-consul-knownleader": "true",
            "x-consul-lastcontact": "0"
          }
        })
      })

    const ok = HttpServerResponse.empty({ status: 200 })
    const route = (request: HttpServerRequest.HttpServerRequest, path: string, query: URLSearchParams) =>
      Effect.gen(function*() {
        const method = request.method
        const put = (handle: () => Effect.Effect<void>) =>
          method === "PUT" ? Effect.as(handle(), ok) : Effect.fail(httpError(405, `method ${method} not allowed`))
        const tail = (prefix: string) => decodeURIComponent(path.slice(prefix.length))
        if (path === "/v1/agent/service/register") {
          const text = yield* request.text.pipe(Effect.orDie)
          const body = yield* Effect.try({
            try: () => JSON.parse(text) as unknown,
            catch: (e) => decodeFailed(String(e))
          })
          return yield* put(() => register(body))
        }
        if (path.startsWith("/v1/agent/service/deregister/")) {
          return yield* put(() => deregister(tail("/v1/agent/service/deregister/")))
        }
        for (const [verb, status] of [["pass", "passing"], ["fail", "critical"]] as const) {
          const prefix = `/v1/agent/check/${verb}/`
          if (path.startsWith(prefix)) {
            return yield* put(() => updateCheck(tail(prefix), status, query.get("note") ?? ""))
          }
        }
        if (path.startsWith("/v1/health/service/") && method === "GET") {
          return yield* health(tail("/v1/health/service/"), query)
        }
        return yield* httpError(404, "Not found: this test double does not implement this endpoint")
      })

    // Interruptible, unlike a bare HttpApp: a client that hangs up, or the double
    // closing, ends the blocking queries in flight.
    const app = Effect.interruptible(Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const url = new URL(request.url, "http://consul")
      recorded.push({ at: Date.now(), method: request.method, path: url.pathname, query: url.searchParams })
      if (unavailable) return HttpServerResponse.text("No cluster leader", { status: 500 })
      if (options.aclToken !== undefined) {
        const token = request.headers["x-consul-token"]
        if (token === undefined) {
          return HttpServerResponse.text("Permission denied: anonymous token lacks permission", { status: 403 })
        }
        if (token !== options.aclToken) return HttpServerResponse.text("ACL not found", { status: 403 })
      }
      // Handlers throw HttpError for bad input, the way Consul's handlers return it.
      return yield* Effect.suspend(() => route(request, url.pathname, url.searchParams)).pipe(
        Effect.catchAllDefect((defect) => defect instanceof HttpError ? Effect.fail(defect) : Effect.die(defect)),
        Effect.catchAll((error) => Effect.succeed(HttpServerResponse.text(error.reason, { status: error.status })))
      )
    }))

    const node = createServer()
    const server = yield* NodeHttpServer.make(() => node, { port: 0, host: "127.0.0.1" }).pipe(Effect.orDie)
    // Runs before the server's own close, which would otherwise wait for the blocking queries.
    yield* Effect.addFinalizer(() => Effect.sync(() => node.closeAllConnections()))
    yield* server.serve(app)
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0

    return {
      url: `http://127.0.0.1:${port}`,
      setUnavailable: (value) =>
        Effect.suspend(() => {
          unavailable = value
          if (!value) return Effect.void
          // Losing the leader ends the blocking queries in flight, with the same error.
          generation += 1
          return publish
        }),
      restoreEmptySnapshot: Effect.gen(function*() {
        services.clear()
        checks.clear()
        removedAt.clear()
        yield* FiberMap.clear(timers)
        index = 1
        nodeIndex = 1
        generation += 1
        yield* publish
      }),
      requests: Effect.sync(() => [...recorded])
    }
  })

/** The double as a service for tests that share one agent. */
export class ConsulAgent
  extends Context.Tag("@movieapp/testkit/ConsulAgentDouble/ConsulAgent")<ConsulAgent, ConsulAgentDouble>()
{
  static readonly layer = (options: Options = {}): Layer.Layer<ConsulAgent> => Layer.scoped(ConsulAgent, make(options))
}
