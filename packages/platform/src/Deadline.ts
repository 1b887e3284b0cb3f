/**
 * The caller's deadline, carried with the fiber so that every outbound call made
 * while serving a request is bounded by it (the gRPC edge sets it; clients read it).
 */
import { Duration, Effect, FiberRef, Option } from "effect"
import { globalValue } from "effect/GlobalValue"

/** Absolute deadline in epoch milliseconds, if the caller set one. */
export const currentDeadline: FiberRef.FiberRef<Option.Option<number>> = globalValue(
  "@movieapp/platform/Deadline/currentDeadline",
  () => FiberRef.unsafeMake<Option.Option<number>>(Option.none())
)

/** Runs `self` under an absolute deadline; an earlier enclosing deadline wins. */
export const withDeadline = (deadline: number) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.locallyWith(self, currentDeadline, Option.match({
    onNone: () => Option.some(deadline),
    onSome: (outer) => Option.some(Math.min(outer, deadline))
  }))

/** Time left until the current deadline, capped at `max`. */
export const remaining = (max: Duration.DurationInput): Effect.Effect<Duration.Duration> =>
  Effect.map(FiberRef.get(currentDeadline), Option.match({
    onNone: () => Duration.decode(max),
    onSome: (deadline) => Duration.min(Duration.decode(max), Duration.millis(Math.max(0, deadline - Date.now())))
  }))
