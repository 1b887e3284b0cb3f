/**
 * The caller's deadline, carried with the fiber so that every outbound call made
 * while serving a request knows the time it has left. Whoever sets a deadline
 * also enforces it: the gRPC edge interrupts the call's fiber when it passes (the
 * caller's own deadline through grpc-js, or the server's bound on a call), so a
 * client under a deadline needs no timer of its own.
 */
import { Duration, Effect, type FiberId, FiberRef, FiberRefs, Option } from "effect"
import { globalValue } from "effect/GlobalValue"

/** Absolute deadline in epoch milliseconds, if one is set and enforced. */
export const currentDeadline: FiberRef.FiberRef<Option.Option<number>> = globalValue(
  "@movieapp/platform/Deadline/currentDeadline",
  () => FiberRef.unsafeMake<Option.Option<number>>(Option.none())
)

/**
 * The fiber refs of a new fiber that runs under `deadline`: for edges that fork
 * one fiber per call (Runtime `updateRefs`), cheaper than wrapping the effect.
 */
export const setIn = (deadline: number) => (refs: FiberRefs.FiberRefs, fiberId: FiberId.Runtime): FiberRefs.FiberRefs =>
  FiberRefs.updateAs(refs, { fiberId, fiberRef: currentDeadline, value: Option.some(deadline) })

/** Time left until the current deadline, None when no deadline is set. */
export const remaining: Effect.Effect<Option.Option<Duration.Duration>> = Effect.map(
  FiberRef.get(currentDeadline),
  Option.map((deadline) => Duration.millis(Math.max(0, deadline - Date.now())))
)
