/**
 * An OTLP/HTTP trace receiver on loopback, standing where a collector (an
 * OpenTelemetry Collector, Jaeger) would: it takes `POST /v1/traces` with the
 * JSON encoding the services export, answers as a collector does (200, `{}`), and
 * keeps every request, so a test can see which spans a process really exported
 * over the wire. Protobuf bodies are not decoded (nothing here sends them).
 *
 * Set not to answer, it stands for a collector that hangs: requests are taken and
 * held until the sender gives up, which the receiver counts.
 */
import { Effect, type Scope } from "effect"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"

export interface Options {
  /** Answer requests (default); `false` holds them until the sender abandons them. */
  readonly answer?: boolean
}

export interface ReceivedRequest {
  readonly method: string
  readonly path: string
  readonly contentType: string
  readonly body: string
}

/** One span as exported: OTLP/JSON ids are lowercase hex, as in `traceparent`. */
export interface ExportedSpan {
  /** `service.name` of the resource that exported it. */
  readonly service: string | undefined
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  /** Absent for a root span. */
  readonly parentSpanId: string | undefined
}

export interface OtlpReceiver {
  /** Base URL of the receiver (what `TRACING_ENDPOINT` takes); spans go to `${url}/v1/traces`. */
  readonly url: string
  /** Every request received so far. */
  readonly requests: () => ReadonlyArray<ReceivedRequest>
  /** Every span in the trace exports received so far (JSON bodies POSTed to /v1/traces). */
  readonly spans: () => ReadonlyArray<ExportedSpan>
  /** Requests the sender closed before they were answered (only when not answering). */
  readonly abandoned: () => number
}

interface KeyValue {
  readonly key: string
  readonly value?: { readonly stringValue?: string }
}

interface ExportBody {
  readonly resourceSpans?: ReadonlyArray<{
    readonly resource?: { readonly attributes?: ReadonlyArray<KeyValue> }
    readonly scopeSpans?: ReadonlyArray<{
      readonly spans?: ReadonlyArray<
        { readonly name: string; readonly traceId: string; readonly spanId: string; readonly parentSpanId?: string }
      >
    }>
  }>
}

/** The spans of one OTLP/JSON `ExportTraceServiceRequest`. */
export const decode = (body: string): ReadonlyArray<ExportedSpan> =>
  ((JSON.parse(body) as ExportBody).resourceSpans ?? []).flatMap((resourceSpans) => {
    const service = resourceSpans.resource?.attributes?.find((a) => a.key === "service.name")?.value?.stringValue
    return (resourceSpans.scopeSpans ?? []).flatMap((scope) =>
      (scope.spans ?? []).map((span) => ({
        service,
        name: span.name,
        traceId: span.traceId,
        spanId: span.spanId,
        // The JS exporter writes "" or leaves it out for a root.
        parentSpanId: span.parentSpanId ? span.parentSpanId : undefined
      }))
    )
  })

/** A receiver listening on a free loopback port until the scope closes. */
export const make = (options: Options = {}): Effect.Effect<OtlpReceiver, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<OtlpReceiver & { readonly close: () => void }>((resume) => {
      const requests: Array<ReceivedRequest> = []
      const held = new Set<ServerResponse>()
      let abandoned = 0
      const server = createServer((request: IncomingMessage, response) => {
        const chunks: Array<Buffer> = []
        request.on("data", (chunk: Buffer) => chunks.push(chunk))
        request.on("end", () => {
          requests.push({
            method: request.method ?? "",
            path: request.url ?? "",
            contentType: String(request.headers["content-type"]),
            body: Buffer.concat(chunks).toString("utf8")
          })
          if (options.answer === false) {
            held.add(response)
            response.on("close", () => {
              if (!response.writableEnded) abandoned++
              held.delete(response)
            })
            return
          }
          const ok = request.method === "POST" && request.url === "/v1/traces"
          response.writeHead(ok ? 200 : 404, { "content-type": "application/json" }).end(
            ok ? "{}" : "{\"message\":\"not found\"}"
          )
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number }
        resume(Effect.succeed({
          url: `http://127.0.0.1:${port}`,
          requests: () => requests,
          spans: () =>
            requests
              .filter((r) => r.method === "POST" && r.path === "/v1/traces" && r.contentType.includes("json"))
              .flatMap((r) => decode(r.body)),
          abandoned: () => abandoned,
          close: () => {
            for (const response of held) response.destroy()
            server.close()
            server.closeAllConnections()
          }
        }))
      })
    }),
    ({ close }) => Effect.sync(close)
  ).pipe(Effect.map(({ close: _close, ...receiver }) => receiver))
