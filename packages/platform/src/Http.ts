/**
 * The HTTP listener of a service (its JSON API, `/metrics`, its index), and the
 * one shape of every HTTP error: `{code, message, field?}`, the gRPC status name
 * and the same sentence a gRPC caller gets.
 */
import {
  HttpApiError,
  HttpApiSchema,
  HttpIncomingMessage,
  HttpLayerRouter,
  HttpMiddleware,
  type HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { PermissionDenied, RateLimited, Unauthenticated } from "@movieapp/contracts/Auth"
import { DeadlineExceeded, InvalidArgument, ServiceUnavailable } from "@movieapp/contracts/Errors"
import { Array, Cause, Duration, Effect, Layer, Option, ParseResult, Schema } from "effect"
import { createServer } from "node:http"
import { createServer as createSecureServer, type Server as HttpsServer } from "node:https"
import { DEFAULT_MAX_REQUEST_BYTES } from "./Config.js"
import { Code } from "./GrpcStatus.js"
import * as Metrics from "./Metrics.js"
import * as RateLimit from "./RateLimit.js"
import * as Tls from "./Tls.js"

/** Where a service's HTTP port answers its health (see ServerHost). */
export const HEALTH_PATH = "/health"

/** The body of every HTTP error answer. */
export const ErrorBody = Schema.Struct({
  /** The gRPC status name the same failure has there: `INVALID_ARGUMENT`, `NOT_FOUND`, `UNAVAILABLE`... */
  code: Schema.String,
  /** What happened, worded as for gRPC callers (`rating_value: must be an integer from 1 to 10`). */
  message: Schema.String,
  /** The request field at fault, when one is. */
  field: Schema.optional(Schema.String)
}).annotations({ identifier: "Error" })
export type ErrorBody = typeof ErrorBody.Type

const errorBody = (code: Code, message: string, field?: string): ErrorBody =>
  field === undefined ? { code: Code[code], message } : { code: Code[code], message, field }

/** An error answer: `status`, and {@link ErrorBody}. */
export const errorResponse = (
  status: number,
  code: Code,
  message: string,
  field?: string,
  headers?: Record<string, string>
) =>
  HttpServerResponse.unsafeJson(errorBody(code, message, field), {
    status,
    ...(headers === undefined ? {} : { headers })
  })

/**
 * How an HttpApi endpoint answers `error`: `status` with {@link ErrorBody},
 * `code` and the error's own `message` (what its gRPC edge sends as details),
 * and the field when `field` names one. Answers are encoded, never decoded here.
 */
export const apiError = <A extends { readonly message: string }, I, R>(
  error: Schema.Schema<A, I, R>,
  options: { readonly status: number; readonly code: Code; readonly field?: (error: A) => string | undefined }
): Schema.Schema<A, ErrorBody> =>
  Schema.transformOrFail(ErrorBody, Schema.typeSchema(error), {
    strict: true,
    decode: (body, _, ast) => ParseResult.fail(new ParseResult.Forbidden(ast, body, "an error answer is not decoded")),
    encode: (value) => ParseResult.succeed(errorBody(options.code, value.message, options.field?.(value) || undefined))
  }).annotations(HttpApiSchema.annotations({ status: options.status }))

/**
 * OpenAPI: the scheme writes are authenticated with (`bearer`, a JWT; see
 * Auth), for an HttpApi's `OpenApi.Transform` annotation; each write endpoint
 * then names it with {@link bearerRequired} as its `OpenApi.Override`.
 */
export const withBearerScheme = (spec: Record<string, any>): Record<string, any> => ({
  ...spec,
  components: {
    ...spec.components,
    securitySchemes: {
      ...spec.components?.securitySchemes,
      bearer: {
        type: "http",
        scheme: "bearer",
        bearerFormat: "JWT",
        description: "A JWT signed ES256 or RS256 by the key the service trusts, for its issuer and audience"
      }
    }
  }
})

/** OpenAPI: this endpoint needs a bearer token (see {@link withBearerScheme}). */
export const bearerRequired: Record<string, unknown> = { security: [{ bearer: [] }] }

/** The HTTP answers of the errors every service shares. */
export const InvalidArgumentError = apiError(InvalidArgument, {
  status: 400,
  code: Code.INVALID_ARGUMENT,
  field: (error) => error.field
})
export const ServiceUnavailableError = apiError(ServiceUnavailable, { status: 503, code: Code.UNAVAILABLE })
export const DeadlineExceededError = apiError(DeadlineExceeded, { status: 504, code: Code.DEADLINE_EXCEEDED })
/** 401, with `WWW-Authenticate` (see Auth.HttpAuthentication). */
export const UnauthenticatedError = apiError(Unauthenticated, { status: 401, code: Code.UNAUTHENTICATED })
export const PermissionDeniedError = apiError(PermissionDenied, { status: 403, code: Code.PERMISSION_DENIED })
/** 429, with `Retry-After` (see Auth.HttpAuthentication). */
export const RateLimitedError = apiError(RateLimited, { status: 429, code: Code.RESOURCE_EXHAUSTED })

const decodeErrorBody = Schema.decodeUnknownOption(Schema.parseJson(HttpApiError.HttpApiDecodeError))

/**
 * HttpApi answers a request that fails an endpoint's schema itself, before any
 * handler, in a shape of its own (`HttpApiDecodeError`, a dump of schema types):
 * read back with that error's own schema, it is answered as our InvalidArgument,
 * the first issue's field and message.
 */
const asInvalidArgument = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  if (response.status !== 400 || response.body._tag !== "Uint8Array") return response
  return Option.match(decodeErrorBody(new TextDecoder().decode(response.body.body)), {
    onNone: () => response,
    onSome: (error) =>
      Option.match(Array.head(error.issues), {
        onNone: () => errorResponse(400, Code.INVALID_ARGUMENT, error.message),
        onSome: (issue) => {
          const field = issue.path.map(String).join(".")
          return field === ""
            ? errorResponse(400, Code.INVALID_ARGUMENT, issue.message)
            : errorResponse(400, Code.INVALID_ARGUMENT, `${field}: ${issue.message}`, field)
        }
      })
  })
}

/** The request's body could not be read: too large (more than `maxBytes`), or not the JSON it claims to be. */
const bodyProblem = (
  cause: Cause.Cause<unknown>
): Option.Option<{ readonly tooLarge: boolean; readonly reason: string }> => {
  for (const error of [...Cause.failures(cause), ...Cause.defects(cause)]) {
    if (!HttpServerError.isServerError(error) || error._tag !== "RequestError" || error.reason !== "Decode") continue
    return Option.some({
      // The message of @effect/platform-node's body reader once it has read more than the limit.
      tooLarge: error.cause instanceof Error && error.cause.message === "maxBytes exceeded",
      reason: error.cause instanceof Error ? error.cause.message : String(error.cause ?? error.description ?? "")
    })
  }
  return Option.none()
}

const isRouteNotFound = (cause: Cause.Cause<unknown>) =>
  [...Cause.failures(cause)].some((error) => HttpServerError.isServerError(error) && error._tag === "RouteNotFound")

/** A body is coming: its length is declared above 0, or it is chunked. */
const hasBody = (request: HttpServerRequest.HttpServerRequest) =>
  request.headers["transfer-encoding"] !== undefined || Number(request.headers["content-length"] ?? 0) > 0

/**
 * Requests and failures, for every route, answered in {@link ErrorBody}:
 * - A body larger than its limit answers 413 and is not read further: one that
 *   declares its length is refused before any of it is read; a chunked one is
 *   read up to the limit, and its connection is closed there (the platform's
 *   reader stops by destroying the request). The connection is closed after a
 *   413, so the rest of the body is never read.
 * - A body sent as anything but JSON answers 415, saying what to send: HttpApi
 *   would read a form or text instead, and report the JSON fields as missing.
 * - A body that is not JSON fails inside HttpApi as a defect that would answer an
 *   empty 400; callers get the reason instead.
 * - A request failing an endpoint's schema answers our InvalidArgument (see
 *   {@link asInvalidArgument}); a path no route serves, NOT_FOUND pointing at `/`.
 * - Any other defect (a bug) is logged at ERROR with its cause and answered 500
 *   with no details.
 */
const requests = (limit: number, limiter: RateLimit.Limiter | undefined) =>
  HttpLayerRouter.middleware(
    (app) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        if (limiter !== undefined && request.url !== Metrics.PATH && request.url !== HEALTH_PATH) {
          const wait = limiter(RateLimit.fromRemoteAddress(Option.getOrElse(request.remoteAddress, () => "")))
          if (wait > 0) {
            return errorResponse(
              429,
              Code.RESOURCE_EXHAUSTED,
              new RateLimited({ retryAfterMillis: wait }).message,
              undefined,
              { "retry-after": String(Math.ceil(wait / 1000)) }
            )
          }
        }
        const tooLarge = errorResponse(
          413,
          Code.RESOURCE_EXHAUSTED,
          `the request body is larger than ${limit} bytes`,
          undefined,
          {
            connection: "close"
          }
        )
        const declared = request.headers["content-length"]
        if (declared !== undefined && Number(declared) > limit) return tooLarge
        const contentType = request.headers["content-type"]
        if (contentType !== undefined && hasBody(request) && !/\bjson\b/i.test(contentType)) {
          return errorResponse(
            415,
            Code.INVALID_ARGUMENT,
            `body: must be JSON, sent with content-type: application/json (it was sent as ${contentType})`,
            "body"
          )
        }
        return yield* app.pipe(
          HttpIncomingMessage.withMaxBodySize(Option.some(limit)),
          Effect.map(asInvalidArgument),
          Effect.catchAllCause((cause) =>
            Option.match(bodyProblem(cause), {
              onSome: (problem) =>
                Effect.succeed(
                  problem.tooLarge
                    ? tooLarge
                    : errorResponse(400, Code.INVALID_ARGUMENT, `body: is not valid JSON: ${problem.reason}`, "body")
                ),
              onNone: () => {
                const path = request.url.split("?", 1)[0]!
                if (isRouteNotFound(cause)) {
                  return Effect.succeed(
                    errorResponse(
                      404,
                      Code.NOT_FOUND,
                      `no route for ${request.method} ${path}; GET / lists what this service serves`
                    )
                  )
                }
                return Cause.isDie(cause) && !Cause.isInterruptedOnly(cause)
                  ? Effect.logError("HTTP request failed on a bug", cause).pipe(
                    Effect.annotateLogs({ "http.method": request.method, "http.path": path }),
                    Effect.as(errorResponse(500, Code.INTERNAL, "internal error"))
                  )
                  : Effect.failCause(cause)
              }
            })
          )
        )
      }),
    { global: true }
  )

/**
 * Serves every route registered by `routes` on host:port. Closing the layer stops
 * accepting connections and lets in-flight requests finish; connections still
 * open after `shutdownTimeout` (a stalled client, a slow request) are cut, so a
 * stop never hangs past it. Bodies are bounded by `maxBodyBytes` (unless set,
 * Config's DEFAULT_MAX_REQUEST_BYTES); failures are answered in {@link ErrorBody}.
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
    /** Serve HTTPS with this identity, following its changes; plain HTTP when absent. */
    readonly tls?: Tls.Certificates | undefined
    /** Limits every request but metrics and health, per peer address (none by default). */
    readonly limiter?: RateLimit.Limiter | undefined
  }
) =>
  Layer.fresh(Layer.unwrapEffect(Effect.sync(() => {
    const tls = options.tls
    const server = tls === undefined ? createServer() : createSecureServer(Tls.serverOptions(tls, "http"))
    const following = tls === undefined ? Layer.empty : Layer.scopedDiscard(Tls.follow(tls, server as HttpsServer))
    // Built after the listener, so released before it: arms the cut before the listener's close waits.
    const bounded = Layer.scopedDiscard(Effect.addFinalizer(() =>
      Effect.sync(() => {
        server.closeIdleConnections()
        setTimeout(() => server.closeAllConnections(), Duration.toMillis(options.shutdownTimeout ?? "10 seconds"))
          .unref()
      }).pipe(Effect.zipRight(Effect.logInfo("HTTP server stopping")))
    ))
    return Layer.mergeAll(
      HttpLayerRouter.serve(
        Layer.merge(routes, requests(options.maxBodyBytes ?? DEFAULT_MAX_REQUEST_BYTES, options.limiter)),
        {
          disableListenLog: true,
          disableLogger: true
        }
      ).pipe(
        // A scrape or a probe every few seconds is not a request worth a trace.
        HttpMiddleware.withTracerDisabledWhen((request) => request.url === Metrics.PATH || request.url === HEALTH_PATH)
      ),
      bounded,
      following
    ).pipe(Layer.provideMerge(NodeHttpServer.layer(() => server, { host: options.host, port: options.port })))
  })))

/** The port the HTTP server actually bound (useful with port 0). */
export const boundPort = (server: HttpServer.HttpServer): number =>
  server.address._tag === "TcpAddress" ? server.address.port : 0
