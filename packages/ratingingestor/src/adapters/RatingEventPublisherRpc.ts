/** Publishes rating events to the running rating service through its Effect RPC endpoint. */
import { NodeHttpClient } from "@effect/platform-node"
import { RatingRpcs } from "@movieapp/contracts/Rating"
import { rootReason } from "@movieapp/platform/ErrorChain"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import { Duration, Effect, Layer } from "effect"
import { PublishError, RatingEventPublisher } from "../ports/RatingEventPublisher.js"

export interface Options {
  /** Base URL of the rating service's HTTP listener, e.g. `http://127.0.0.1:8092`. */
  readonly url: string
  /** How long one batch may take before it counts as failed; 30 seconds by default. */
  readonly timeout?: Duration.DurationInput
}


export const make = (options: Options) =>
  Effect.gen(function* () {
    const client = yield* RpcTransport.makeClient(RatingRpcs, options.url)
    const timeout = options.timeout ?? Duration.seconds(30)
    return RatingEventPublisher.of({
      publish: (events) =>
        client.SubmitRatingEvents({ events }).pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new PublishError({
                message: `the rating service at ${options.url} did not answer within ${Duration.format(timeout)}`
              })
          }),
          Effect.catchTags({
            RpcClientError: (error) =>
              new PublishError({ message: `cannot reach the rating service at ${options.url}: ${rootReason(error)}`, cause: error }),
            InvalidArgument: (error) =>
              new PublishError({ message: `the rating service rejected a batch: ${error.message}`, cause: error }),
            ServiceUnavailable: (error) =>
              new PublishError({ message: `the rating service cannot take events: ${error.message}`, cause: error })
          }),
          Effect.asVoid,
          Effect.withSpan("RatingEventPublisher.publish", { attributes: { "events.count": events.length } })
        )
    })
  })

/** One client for the layer's lifetime, reused by every batch. */
export const layer = (options: Options): Layer.Layer<RatingEventPublisher> =>
  Layer.scoped(RatingEventPublisher, make(options)).pipe(Layer.provide(NodeHttpClient.layerUndici))
