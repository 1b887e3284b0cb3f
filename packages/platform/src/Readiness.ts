/**
 * Readiness: whether a service can do its work right now. Adapters of the
 * dependencies a service cannot work without (its database, its broker) register
 * a named check; the service's server polls them and reports NOT_SERVING on its
 * gRPC health service while any fails, SERVING again once all pass.
 */
import { Cause, Context, Duration, Effect, Layer, Ref, Schedule, type Scope } from "effect"

/** A check that failed, and why (for the log; never sent to callers). */
export interface Failure {
  readonly name: string
  readonly reason: string
}

export class Readiness extends Context.Tag("@movieapp/platform/Readiness")<Readiness, {
  /** Adds a named check for as long as the scope is open. */
  readonly register: (name: string, check: Effect.Effect<unknown, unknown>) => Effect.Effect<void, never, Scope.Scope>
  /** Runs every check concurrently, each bounded by `timeout`; the ones that failed. */
  readonly check: (timeout: Duration.DurationInput) => Effect.Effect<ReadonlyArray<Failure>>
}>() {}

const reasonOf = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  const text = error instanceof Error
    ? `${error.message}${error.cause ? `: ${String(error.cause)}` : ""}`
    : String(error)
  return text.slice(0, 500)
}

/**
 * A registry of checks for one service. Fresh wherever it is provided, so services
 * sharing a process (the dev stack, tests) do not share their dependencies' fate.
 */
export const layer: Layer.Layer<Readiness> = Layer.fresh(Layer.effect(
  Readiness,
  Effect.gen(function*() {
    const checks = yield* Ref.make(new Map<string, Effect.Effect<unknown, unknown>>())
    return Readiness.of({
      register: (name, check) =>
        Effect.acquireRelease(
          Ref.update(checks, (map) => new Map(map).set(name, check)),
          () =>
            Ref.update(checks, (map) => {
              const next = new Map(map)
              next.delete(name)
              return next
            })
        ),
      check: (timeout) =>
        Ref.get(checks).pipe(
          Effect.flatMap((map) =>
            Effect.forEach(
              map,
              ([name, check]) =>
                check.pipe(
                  Effect.timeoutFail({
                    duration: timeout,
                    onTimeout: () => new Error(`no answer within ${Duration.format(timeout)}`)
                  }),
                  Effect.sandbox,
                  Effect.matchCause({
                    onSuccess: () => [],
                    onFailure: (cause) => [{ name, reason: reasonOf(Cause.flatten(cause)) }]
                  })
                ),
              { concurrency: "unbounded" }
            )
          ),
          Effect.map((results) => results.flat()),
          // Polls are not work anyone asked for: they would add a trace every few seconds.
          Effect.withTracerEnabled(false)
        )
    })
  })
))

/** Registers `check` under `name` for the lifetime of the layer. */
export const layerCheck = <R>(
  name: string,
  check: Effect.Effect<unknown, unknown, R>
): Layer.Layer<never, never, Readiness | R> =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const context = yield* Effect.context<R>()
    yield* (yield* Readiness).register(name, Effect.provide(check, context))
  }))

export interface WatchOptions {
  /** Time between two rounds of checks. */
  readonly interval: Duration.DurationInput
  /** Time a check gets before it counts as failed. */
  readonly timeout: Duration.DurationInput
}

/**
 * Runs a round of checks now, then every `interval` in the background of the
 * current scope, calling `onChange` with the outcome whenever it changes (and
 * after the first round). Changes are logged with the failing checks.
 */
export const watch = (
  options: WatchOptions,
  onChange: (ready: boolean) => Effect.Effect<void>
): Effect.Effect<void, never, Readiness | Scope.Scope> =>
  Effect.gen(function*() {
    const readiness = yield* Readiness
    let last: boolean | undefined
    const round = Effect.flatMap(readiness.check(options.timeout), (failures) => {
      const ready = failures.length === 0
      if (ready === last) return Effect.void
      const log = ready
        ? (last === undefined ? Effect.void : Effect.logInfo("dependencies reachable again: serving"))
        : Effect.logWarning("dependency unreachable: not serving").pipe(
          Effect.annotateLogs("failing", failures.map((f) => `${f.name}: ${f.reason}`).join("; "))
        )
      last = ready
      return Effect.zipRight(log, onChange(ready))
    })
    yield* round
    yield* Effect.forkScoped(Effect.repeat(round, Schedule.spaced(options.interval)))
  })
