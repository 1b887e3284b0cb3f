/**
 * Calls another service over Effect RPC with client-side load balancing: the
 * healthy instances come from a view that discovery keeps current (no lookup per
 * call), each instance has one long-lived connection, opened as soon as the
 * instance appears, that every call to it shares; calls rotate over the
 * instances; an instance that cannot be reached is skipped for a while and then
 * tried again; unavailability is retried with jittered backoff (on another
 * instance when there is one); every call is bounded by the caller's deadline,
 * or by `timeout` when the caller set none.
 *
 * The path of one call is budgeted: a few closures and no fiber, scope or lookup
 * of its own; retrying and skipping cost something only when a call fails.
 *
 * When the calling service serves TLS, every connection is TLS too: the instance
 * must present a certificate naming the service (`metadata`, `rating`) that the
 * CA signed (`SERVER_TLS_CA_FILE`; the system's CAs without one), and is shown
 * the caller's certificate, which it demands when it has that CA.
 */
import * as Socket from "@effect/platform/Socket"
import { type Rpc, type RpcClient, type RpcGroup } from "@effect/rpc"
import { RpcClientError } from "@effect/rpc/RpcClientError"
import { DeadlineExceeded, ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Cause, Duration, Effect, ExecutionStrategy, Exit, FiberRef, Option, Random, Scope, Stream } from "effect"
import * as Deadline from "./Deadline.js"
import { Discovery, type Instance } from "./Discovery.js"
import * as RpcTransport from "./RpcTransport.js"
import * as Tls from "./Tls.js"

export interface Options {
  /** Service name in discovery. */
  readonly service: string
  /** Upper bound of one call, retries included, when the caller set no deadline. */
  readonly timeout?: Duration.DurationInput
  /** Retries after the first attempt while the service is unavailable. */
  readonly retries?: number
  /** First backoff delay; later ones grow exponentially, with jitter. */
  readonly backoff?: Duration.DurationInput
  /**
   * How long an instance that could not be reached is skipped; it doubles with each
   * failure in a row, up to `maxSkip`. Default 1 second.
   */
  readonly skip?: Duration.DurationInput
  /** Default 30 seconds. */
  readonly maxSkip?: Duration.DurationInput
}

export interface ServiceClient<Rpcs extends Rpc.Any> {
  readonly call: <A, E>(
    operation: string,
    f: (client: RpcClient.RpcClient<Rpcs, RpcClientError>) => Effect.Effect<A, E>
  ) => Effect.Effect<A, Exclude<E, RpcClientError> | ServiceUnavailable | DeadlineExceeded>
}

/** One instance and the connection every call to it shares. */
interface Connection<Rpcs extends Rpc.Any> {
  readonly instance: Instance
  readonly client: RpcClient.RpcClient<Rpcs, RpcClientError>
  readonly scope: Scope.CloseableScope
  /** Failures to reach it in a row, and until when it is skipped (epoch ms). */
  failures: number
  skippedUntil: number
}

const addressOf = (instance: Instance) => `${instance.host}:${instance.port}`

export const make = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  options: Options
): Effect.Effect<ServiceClient<Rpcs>, never, Discovery | Tls.ServerTls | Scope.Scope | Rpc.MiddlewareClient<Rpcs>> =>
  Effect.gen(function*() {
    const discovery = yield* Discovery
    const tls = Option.getOrUndefined(yield* Tls.ServerTls)
    const clientOptions: RpcTransport.ClientOptions = tls === undefined
      ? {}
      : { tls: { certificates: tls, service: options.service } }
    const scope = yield* Effect.scope
    const timeout = Duration.decode(options.timeout ?? "5 seconds")
    const retries = options.retries ?? 3
    const backoffMillis = Duration.toMillis(options.backoff ?? "25 millis")
    const skipMillis = Duration.toMillis(options.skip ?? "1 second")
    const maxSkipMillis = Duration.toMillis(options.maxSkip ?? "30 seconds")
    const unavailable = (reason: string) => new ServiceUnavailable({ service: options.service, reason })

    const byAddress = new Map<string, Connection<Rpcs>>()
    /** The healthy instances' connections; undefined until discovery first answers. */
    let view: ReadonlyArray<Connection<Rpcs>> | undefined
    let next = 0

    const connect = (instance: Instance) =>
      Effect.gen(function*() {
        const connectionScope = yield* Scope.fork(scope, ExecutionStrategy.sequential)
        const client = yield* RpcTransport.makeClient(group, instance, clientOptions).pipe(
          Scope.extend(connectionScope)
        )
        return { instance, client, scope: connectionScope, failures: 0, skippedUntil: 0 } satisfies Connection<Rpcs>
      })

    // A connection that left the view is closed once the calls it carries are over:
    // none outlives the timeout, which bounds every call.
    const retire = (connection: Connection<Rpcs>) =>
      Scope.close(connection.scope, Exit.void).pipe(Effect.delay(timeout), Effect.forkIn(scope), Effect.asVoid)

    const lock = yield* Effect.makeSemaphore(1)
    const follow = (instances: ReadonlyArray<Instance>) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const current = new Set(instances.map(addressOf))
        for (const [address, connection] of byAddress) {
          if (current.has(address)) continue
          byAddress.delete(address)
          yield* retire(connection)
        }
        const connections: Array<Connection<Rpcs>> = []
        for (const instance of instances) {
          const address = addressOf(instance)
          let connection = byAddress.get(address)
          if (connection === undefined) {
            connection = yield* connect(instance)
            byAddress.set(address, connection)
          }
          connections.push(connection)
        }
        view = connections
      }))

    yield* discovery.watch(options.service).pipe(Stream.runForEach(follow), Effect.forkScoped)

    // Before the first view: one lookup, which fails fast when discovery cannot answer.
    const firstView = Effect.suspend(() =>
      view !== undefined
        ? Effect.succeed(view)
        : discovery.healthy(options.service).pipe(
          Effect.mapError((error) => unavailable(error.message)),
          Effect.flatMap((instances) => Effect.zipRight(follow(instances), Effect.sync(() => view!)))
        )
    )

    const pick = (connections: ReadonlyArray<Connection<Rpcs>>, now: number): Connection<Rpcs> => {
      const start = next++
      for (let i = 0; i < connections.length; i++) {
        const candidate = connections[(start + i) % connections.length]!
        if (candidate.skippedUntil <= now) return candidate
      }
      // When every instance failed recently, trying one beats refusing the call.
      return connections[start % connections.length]!
    }

    const markUnreachable = (connection: Connection<Rpcs>, reason: string) => {
      const failures = ++connection.failures
      const skip = Math.min(skipMillis * 2 ** (failures - 1), maxSkipMillis)
      connection.skippedUntil = Date.now() + skip
      return Effect.logWarning("instance unreachable; skipping it").pipe(
        Effect.annotateLogs({
          service: options.service,
          instance: connection.instance.id,
          for: Duration.format(Duration.millis(skip)),
          reason
        })
      )
    }

    type Call<A, E> = (client: RpcClient.RpcClient<Rpcs, RpcClientError>) => Effect.Effect<A, E>
    type Failure<E> = Exclude<E, RpcClientError> | ServiceUnavailable

    const attempt = <A, E>(f: Call<A, E>, retried: number): Effect.Effect<A, Failure<E>> => {
      const connections = view
      if (connections === undefined) return Effect.flatMap(firstView, () => attempt(f, retried))
      if (connections.length === 0) return retry(f, retried, unavailable("no healthy instance"))
      const connection = pick(connections, Date.now())
      const unreachable = (reason: string) =>
        Effect.zipRight(
          markUnreachable(connection, reason),
          retry(f, retried, unavailable(`${connection.instance.id}: ${reason}`))
        )
      const onFailure = (cause: Cause.Cause<E>): Effect.Effect<A, Failure<E>> => {
        const failure = Cause.failureOption(cause)
        if (Option.isSome(failure)) {
          const error = failure.value
          if (error instanceof RpcClientError) return unreachable(error.message)
          if (error instanceof ServiceUnavailable) return retry(f, retried, error)
          return Effect.fail(error as Exclude<E, RpcClientError>)
        }
        // @effect/rpc reports a write on a connection that has just broken as a defect.
        const defect = Cause.dieOption(cause)
        if (Option.isSome(defect) && Socket.isSocketError(defect.value)) return unreachable(defect.value.message)
        return Effect.failCause(cause as Cause.Cause<never>)
      }
      // An instance on probation after failures is forgiven by its first answer.
      return connection.failures === 0
        ? Effect.catchAllCause(f(connection.client), onFailure)
        : Effect.matchCauseEffect(f(connection.client), {
          onFailure,
          onSuccess: (value) => {
            connection.failures = 0
            return Effect.succeed(value)
          }
        })
    }

    const retry = <A, E>(f: Call<A, E>, retried: number, error: ServiceUnavailable): Effect.Effect<A, Failure<E>> => {
      if (retried >= retries) return Effect.fail(error)
      return Effect.flatMap(Effect.zip(Random.next, Deadline.remaining), ([jitter, left]) => {
        const delay = backoffMillis * 2 ** retried * (0.8 + 0.4 * jitter)
        // A retry that could not start before the deadline would only wait to be cut off.
        if (Option.isSome(left) && Duration.toMillis(left.value) <= delay) return Effect.fail(error)
        return Effect.zipRight(Effect.sleep(Duration.millis(delay)), attempt(f, retried + 1))
      })
    }

    return {
      call: (operation, f) =>
        Effect.flatMap(FiberRef.get(Deadline.currentDeadline), (deadline) =>
          Option.isSome(deadline)
            // Whoever set the deadline interrupts the call when it passes: no timer here.
            ? attempt(f, 0)
            : Effect.timeoutFail(attempt(f, 0), {
              duration: timeout,
              onTimeout: () => new DeadlineExceeded({ operation })
            }))
    }
  })
