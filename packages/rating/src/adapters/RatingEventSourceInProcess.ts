/**
 * In-process event transport: events submitted to this service are queued and
 * consumed like a broker's batches would be; the submitter waits until its batch
 * is applied, so a successful submit means the events are stored. A batch is
 * handled as part of its submitter's trace, as a broker's message would be
 * through its headers.
 */
import { InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import type { RatingEvent } from "@movieapp/contracts/Rating"
import { Cause, Context, Deferred, Effect, Exit, Layer, Option, Queue, type Tracer } from "effect"
import { RatingEventInbox } from "../ports/RatingEventInbox.js"
import { RatingEventSource } from "../ports/RatingEventSource.js"

interface Submission {
  readonly events: ReadonlyArray<RatingEvent>
  readonly applied: Deferred.Deferred<void, InvalidArgument | ServiceUnavailable>
  readonly span: Option.Option<Tracer.AnySpan>
}

const withParent = <A, E, R>(effect: Effect.Effect<A, E, R>, span: Option.Option<Tracer.AnySpan>) =>
  Option.isSome(span) ? Effect.withParentSpan(effect, span.value) : effect

const notApplied = (reason: string) => new ServiceUnavailable({ service: "rating ingestion", reason })

export const layer: Layer.Layer<RatingEventSource | RatingEventInbox> = Layer.scopedContext(
  Effect.gen(function*() {
    // Bounded: submitters wait (backpressure) rather than growing memory without limit.
    const queue = yield* Effect.acquireRelease(Queue.bounded<Submission>(64), (queue) =>
      // Nobody consumes any more: answer whoever is still waiting instead of leaving them hanging.
      Queue.takeAll(queue).pipe(
        Effect.flatMap(Effect.forEach((s) => Deferred.fail(s.applied, notApplied("the service is stopping")))),
        Effect.zipRight(Queue.shutdown(queue))
      ))
    const source = RatingEventSource.of({
      consume: (handlers) =>
        Queue.take(queue).pipe(
          Effect.flatMap((submission) =>
            // A submitter that gave up (deadline, cancel) was told its events were not
            // applied; applying them later would contradict that, and could overwrite
            // newer ratings when the caller retries.
            Deferred.isDone(submission.applied).pipe(Effect.flatMap((abandoned) =>
              abandoned ? Effect.void : withParent(handlers.direct(submission.events), submission.span).pipe(
                Effect.onExit(Exit.match({
                  onSuccess: () => Deferred.succeed(submission.applied, undefined),
                  onFailure: (cause) =>
                    Deferred.fail(
                      submission.applied,
                      Option.match(Cause.failureOption(cause), {
                        // The events themselves: what the caller sent cannot be stored.
                        onSome: (refused) =>
                          new InvalidArgument({ field: "events", reason: `cannot be stored: ${refused.reason}` }),
                        onNone: () => notApplied("the events could not be applied")
                      })
                    )
                })),
                // Told to its submitter; the next submission is not held up by it.
                Effect.catchAllCause(() => Effect.void)
              )
            ))
          ),
          Effect.forever
        )
    })
    const inbox = RatingEventInbox.of({
      submit: (events) =>
        Effect.gen(function*() {
          const applied = yield* Deferred.make<void, InvalidArgument | ServiceUnavailable>()
          const span = yield* Effect.option(Effect.currentParentSpan)
          yield* Queue.offer(queue, { events, applied, span })
          return yield* Deferred.await(applied).pipe(Effect.onInterrupt(() => Deferred.interrupt(applied)))
        })
    })
    return Context.make(RatingEventSource, source).pipe(Context.add(RatingEventInbox, inbox))
  })
)
