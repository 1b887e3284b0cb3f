/** Publishes rating events to the running rating service through its Effect RPC endpoint. */
import type { PermissionDenied, RateLimited, Unauthenticated } from "@movieapp/contracts/Auth"
import { RatingRpcs } from "@movieapp/contracts/Rating"
import { rootReason } from "@movieapp/platform/ErrorChain"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import { Duration, Effect, Layer, Redacted } from "effect"
import { PublishError, RatingEventPublisher } from "../ports/RatingEventPublisher.js"

export interface Options {
  /** The rating service's Effect RPC address, e.g. `127.0.0.1:8072`. */
  readonly address: RpcTransport.Address
  /** How long one batch may take before it counts as failed; 30 seconds by default. */
  readonly timeout?: Duration.DurationInput
  /** Mutual TLS to a rating service that demands it (its `SERVER_TLS_CA_FILE`); plaintext when absent. */
  readonly tls?: RpcTransport.ClientOptions["tls"]
  /** A bearer token with the scope `ratings:ingest`, sent with every batch. */
  readonly token?: Redacted.Redacted<string> | undefined
}

export const make = (options: Options) =>
  Effect.gen(function*() {
    const client = yield* RpcTransport.makeClient(RatingRpcs, options.address, { tls: options.tls })
    const timeout = options.timeout ?? Duration.seconds(30)
    const at = `${options.address.host}:${options.address.port}`
    const headers = options.token === undefined ? {} : { authorization: `Bearer ${Redacted.value(options.token)}` }
    const refused = (error: Unauthenticated | PermissionDenied) =>
      new PublishError({
        message:
          `the rating service refused the batch: ${error.message} (RATING_TOKEN must hold a token with the scope ratings:ingest)`,
        cause: error
      })
    // Over the ingestor's rate limit: wait as long as the service says, then send the batch again.
    const once = (events: ReadonlyArray<unknown>) => client.SubmitRatingEvents({ events }, { headers })
    type Once = ReturnType<typeof once>
    const submit = (
      events: ReadonlyArray<unknown>
    ): Effect.Effect<Effect.Effect.Success<Once>, Exclude<Effect.Effect.Error<Once>, RateLimited>> =>
      once(events).pipe(
        Effect.catchTag(
          "RateLimited",
          (limited) => Effect.zipRight(Effect.sleep(Duration.millis(limited.retryAfterMillis)), submit(events))
        )
      )
    return RatingEventPublisher.of({
      publish: (events) =>
        submit(events).pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new PublishError({
                message: `the rating service at ${at} did not answer within ${Duration.format(timeout)}`
              })
          }),
          Effect.catchTags({
            RpcClientError: (error) =>
              new PublishError({
                message: `cannot reach the rating service at ${at}: ${rootReason(error)}`,
                cause: error
              }),
            InvalidArgument: (error) =>
              new PublishError({ message: `the rating service rejected a batch: ${error.message}`, cause: error }),
            ServiceUnavailable: (error) =>
              new PublishError({ message: `the rating service cannot take events: ${error.message}`, cause: error }),
            Unauthenticated: refused,
            PermissionDenied: refused
          }),
          Effect.asVoid,
          Effect.withSpan("RatingEventPublisher.publish", { attributes: { "events.count": events.length } })
        )
    })
  })

/** One client (one connection) for the layer's lifetime, reused by every batch. */
export const layer = (options: Options): Layer.Layer<RatingEventPublisher> =>
  Layer.scoped(RatingEventPublisher, make(options))
