/**
 * Waiting for a condition that cannot be awaited directly (another process, a
 * broker's view): look again at a short interval, up to a deadline, and on timeout
 * fail with what was seen last, so the failure says how far things got. A failed
 * look counts as "not yet" (the thing may still be starting).
 */
import { Duration, Effect, Either, Option, Ref, Schedule } from "effect"

export interface Options {
  /** What is awaited, for the failure message. */
  readonly what: string
  readonly timeout?: Duration.DurationInput
  readonly interval?: Duration.DurationInput
}

export const until = <A, E, R>(
  observe: Effect.Effect<A, E, R>,
  done: (a: A) => boolean,
  options: Options
): Effect.Effect<A, never, R> =>
  Effect.gen(function*() {
    const last = yield* Ref.make(Option.none<Either.Either<A, E>>())
    const timeout = options.timeout ?? Duration.seconds(60)
    return yield* observe.pipe(
      Effect.either,
      Effect.tap((seen) => Ref.set(last, Option.some(seen))),
      Effect.flatMap((seen) =>
        Either.isRight(seen) && done(seen.right) ? Effect.succeed(seen.right) : Effect.fail("not yet" as const)
      ),
      Effect.retry(Schedule.spaced(options.interval ?? "100 millis")),
      Effect.timeout(timeout),
      Effect.catchAll(() =>
        Ref.get(last).pipe(Effect.flatMap((seen) =>
          Effect.dieMessage(
            `timed out after ${Duration.format(timeout)} waiting for ${options.what}; last seen: ${
              Option.match(seen, {
                onNone: () => "nothing",
                onSome: Either.match({ onLeft: (error) => `error ${describe(error)}`, onRight: describe })
              })
            }`
          )
        ))
      )
    )
  })

const describe = (value: unknown): string =>
  JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v instanceof Map ? Object.fromEntries(v) : v))
