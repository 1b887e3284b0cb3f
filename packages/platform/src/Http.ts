/** The HTTP listener of a service: its JSON API and its Effect RPC endpoint share one port. */
import { HttpLayerRouter, HttpMiddleware, type HttpServer, HttpServerError, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Duration, Effect, Layer } from "effect"
import { createServer } from "node:http"
import * as Metrics from "./Metrics.js"

/**
 * A body that is not JSON fails inside HttpApi as a defect that would answer an
 * empty 400; callers get the reason instead, in the shape of our InvalidArgument.
 */
const malformedBody = HttpLayerRouter.middleware(
  (app) =>
    Effect.catchAllDefect(app, (defect) =>
      HttpServerError.isServerError(defect) && defect._tag === "RequestError" && defect.reason === "Decode"
        ? HttpServerResponse.json(
          { _tag: "InvalidArgument", field: "body", reason: `is not valid JSON: ${String(defect.cause ?? defect.description ?? "")}` },
          { status: 400 }
        )
        : Effect.die(defect)),
  { global: true }
)

/**
 * Serves every route registered by `routes` on host:port. Closing the layer stops
 * accepting connections and lets in-flight requests finish; connections still
 * open after `shutdownTimeout` (a stalled client, a slow request) are cut, so a
 * stop never hangs past it.
 *
 * Fresh: HttpLayerRouter's router is one constant layer, so without it every
 * service in one process (the dev stack, tests) would share a single router.
 */
export const serve = <E, R>(
  routes: Layer.Layer<never, E, R>,
  options: { readonly host: string; readonly port: number; readonly shutdownTimeout?: Duration.DurationInput }
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
      HttpLayerRouter.serve(Layer.merge(routes, malformedBody), { disableListenLog: true, disableLogger: true }).pipe(
        // A scrape every few seconds is not a request worth a trace.
        HttpMiddleware.withTracerDisabledWhen((request) => request.url === Metrics.PATH)
      ),
      bounded
    ).pipe(Layer.provideMerge(NodeHttpServer.layer(() => server, { host: options.host, port: options.port })))
  })))

/** The port the HTTP server actually bound (useful with port 0). */
export const boundPort = (server: HttpServer.HttpServer): number =>
  server.address._tag === "TcpAddress" ? server.address.port : 0
