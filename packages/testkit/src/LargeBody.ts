/**
 * A client sending an HTTP request body larger than a server should take, as
 * fast as the server takes it, and stopping only when the server answers or
 * closes the connection: what a server does with it is then measurable.
 */
import { Effect } from "effect"
import { request } from "node:http"

export interface Options {
  readonly port: number
  readonly method: string
  readonly path: string
  /** Bytes of the body (JSON whitespace, so that a server reading it all finds nothing wrong early). */
  readonly bytes: number
  /** Declare the length (`content-length`), or send the body chunked. */
  readonly declareLength: boolean
  /** Declare the length but send none of the body, waiting for the server's answer. */
  readonly withholdBody?: boolean
  /** More request headers, such as `authorization`. */
  readonly headers?: Record<string, string>
}

export interface Outcome {
  /** The status the server answered, if an answer arrived. */
  readonly status: number | undefined
  readonly body: string
  readonly headers: Record<string, string | Array<string> | undefined>
  /** Bytes the connection took from this client (headers included) before it ended. */
  readonly sent: number
}

const CHUNK = Buffer.alloc(64 * 1024, " ")

/** Sends the request on a connection of its own; completes once the answer is read or the connection is gone. */
export const send = (options: Options): Effect.Effect<Outcome> =>
  Effect.async<Outcome>((resume) => {
    let status: number | undefined
    let headers: Outcome["headers"] = {}
    let body = ""
    let stopped = false
    let done = false
    const req = request({
      host: "127.0.0.1",
      port: options.port,
      method: options.method,
      path: options.path,
      agent: false,
      headers: {
        "content-type": "application/json",
        ...(options.declareLength ? { "content-length": String(options.bytes) } : {}),
        ...options.headers
      }
    })
    const finish = () => {
      if (done) return
      done = true
      stopped = true
      const sent = req.socket?.bytesWritten ?? 0
      req.destroy()
      resume(Effect.succeed({ status, body, headers, sent }))
    }
    req.on("response", (response) => {
      stopped = true
      status = response.statusCode
      headers = response.headers
      response.setEncoding("utf8")
      response.on("data", (text: string) => (body += text))
      response.on("end", finish)
      response.on("error", finish)
      response.on("close", finish)
    })
    req.on("error", finish)
    req.on("close", () => {
      // Closed with no answer at all: report what the connection took.
      if (status === undefined) finish()
    })
    let written = 0
    const pump = () => {
      while (!stopped && written < options.bytes) {
        const size = Math.min(CHUNK.length, options.bytes - written)
        written += size
        if (!req.write(CHUNK.subarray(0, size))) {
          req.once("drain", pump)
          return
        }
      }
      if (!stopped) req.end()
    }
    if (options.withholdBody === true) req.flushHeaders()
    else pump()
    return Effect.sync(() => {
      done = true
      req.destroy()
    })
  })
