/** The HTTP listener of a service: its JSON API and its Effect RPC endpoint share one port. */
import {
  HttpIncomingMessage,
  HttpLayerRouter,
  HttpMiddleware,
  type HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Cause, Duration, Effect, Layer, Option } from "effect"
import { createServer } from "node:http"
import { DEFAULT_MAX_REQUEST_BYTES } from "./Config.js"
import * as Metrics from "./Metrics.js"

/** The request's body could not be read: too large (more than `maxBytes`), or not the JSON it claims to be. */
const bodyProblem = (cause: Cause.Cause<unknown>): Option.Option<{ readonly tooLarge: boolean; readonly reason: string }> => {
  for (const error of [...Cause.failures(cause), ...Cause.defects(cause)]) {
    if (!HttpServerError.isServerError(error) || error._tag !== "RequestError" || error.reason !== "Decode") continue
    return Option.some({
      // The message of @effect/platform-node's body reader once it has read more than the limit.
      tooLarge: error.cause instanceof Error && error.cause.message === "maxBytes exceeded",
      reason: String(error.cause ?? error.description ?? "")
    })
  }
  return Option.none()
}

/**
 * Request bodies and failures, for every route:
 * - A body larger than its limit answers 413 and is not read further: one that
 *   declares its length is refused before any of it is read; a chunked one is
 *   read up to the limit, and its connection is closed there (the platform's
 *   reader stops by destroying the request). The connection is closed after a
 *   413, so the rest of the body is never read.
 * - A body that is not JSON fails inside HttpApi as a defect that would answer an
 *   empty 400; callers get the reason instead, in the shape of our InvalidArgument.
 * - Any other defect (a bug) is logged at ERROR with its cause and answered 500
 *   with no details.
 */
const requestBodies = (limit: number) =>
  HttpLayerRouter.middleware(
    (app) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const tooLarge = HttpServerResponse.unsafeJson(
          { _tag: "RequestTooLarge", maxBytes: limit, reason: `the request body is larger than ${limit} bytes` },
          { status: 413, headers: { connection: "close" } }
        )
        const declared = request.headers["content-length"]
        if (declared !== undefined && Number(declared) > limit) return tooLarge
        return yield* app.pipe(
          HttpIncomingMessage.withMaxBodySize(Option.some(limit)),
          Effect.catchAllCause((cause) =>
            Option.match(bodyProblem(cause), {
              onSome: (problem) =>
                Effect.succeed(
                  problem.tooLarge
                    ? tooLarge
                    : HttpServerResponse.unsafeJson({ _tag: "InvalidArgument", field: "body", reason: `is not valid JSON: ${problem.reason}` }, { status: 400 })
                ),
              onNone: () =>
                Cause.isDie(cause) && !Cause.isInterruptedOnly(cause)
                  ? Effect.logError("HTTP request failed on a bug", cause).pipe(
                    Effect.annotateLogs({ "http.method": request.method, "http.path": request.url.split("?", 1)[0]! }),
                    Effect.as(HttpServerResponse.empty({ status: 500 }))
                  )
                  : Effect.failCause(cause)
            }))
        )
      }),
    { global: true }
  )

/**
 * Serves every route registered by `routes` on host:port. Closing the layer stops
 * accepting connections and lets in-flight requests finish; connections still
 * open after `shutdownTimeout` (a stalled client, a slow request) are cut, so a
 * stop never hangs past it. Bodies are bounded by `maxBodyBytes` (unless set,
 * Config's DEFAULT_MAX_REQUEST_BYTES).
 *
 * Fresh: HttpLayerRouter's router is one constant layer, so without it every
 * service in one process (the dev stack, tests) would share a single router.
 */
export const serve = <E, R>(
  routes: Layer.Layer<never, E, R>,
  options: {
    readonly host: string
    readonly port: number
    readonly shutdownTimeout?: Duration.DurationInput
    readonly maxBodyBytes?: number | undefined
  }
) =>
  Layer.fresh(Layer.unwrapEffect(Effect.sync(() => {
    const server = createServer()
    // Built after the listener, so released before it: arms the cut before the listener's close waits.
    const bounded = Layer.scopedDiscard(Effect.addFinalizer(() =>
      Effect.sync(() => {
        server.closeIdleConnections()
        setTimeout(() => server.closeAllConnections(), Duration.toMillis(options.shutdownTimeout ?? "10 seconds")).unref()
      }).pipe(Effect.zipRight(Effect.logInfo("HTTP server stopping")))
    ))
    return Layer.merge(
      HttpLayerRouter.serve(Layer.merge(routes, requestBodies(options.maxBodyBytes ?? DEFAULT_MAX_REQUEST_BYTES)), { disableListenLog: true, disableLogger: true }).pipe(
        // A scrape every few seconds is not a request worth a trace.
        HttpMiddleware.withTracerDisabledWhen((request) => request.url === Metrics.PATH)
      ),
      bounded
    ).pipe(Layer.provideMerge(NodeHttpServer.layer(() => server, { host: options.host, port: options.port })))
  })))

/** The port the HTTP server actually bound (useful with port 0). */
export const boundPort = (server: HttpServer.HttpServer): number =>
  server.address._tag === "TcpAddress" ? server.address.port : 0
