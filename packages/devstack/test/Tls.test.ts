/**
 * TLS and mutual TLS over real sockets, with certificates made by openssl for the
 * test: the gRPC edges answer grpcurl given the CA (`-cacert`), and, where client
 * certificates are required, only with one (`-cert`, `-key`); the HTTP edges
 * serve HTTPS; the internal Effect RPC listeners admit only clients whose
 * certificate the CA signed, which the gateway's calls to its backends present;
 * a renewed certificate is served by every listener without a restart; and a
 * service whose TLS files are unusable does not start, saying which setting to fix.
 */
import { assert, describe, layer } from "@effect/vitest"
import { MetadataRpcs } from "@movieapp/contracts/Metadata"
import * as MetadataServer from "@movieapp/metadata/MetadataServer"
import * as MovieServer from "@movieapp/movie/MovieServer"
import type { TlsSettings } from "@movieapp/platform/Config"
import * as RpcTransport from "@movieapp/platform/RpcTransport"
import * as Tls from "@movieapp/platform/Tls"
import * as RatingServer from "@movieapp/rating/RatingServer"
import * as Certificates from "@movieapp/testkit/Certificates"
import * as Command from "@movieapp/testkit/Command"
import * as Grpcurl from "@movieapp/testkit/Grpcurl"
import * as Logs from "@movieapp/testkit/Logs"
import * as Poll from "@movieapp/testkit/Poll"
import * as ServiceProcess from "@movieapp/testkit/ServiceProcess"
import * as Tokens from "@movieapp/testkit/Tokens"
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import { readFileSync } from "node:fs"
import * as https from "node:https"
import * as NodeTls from "node:tls"
import * as System from "../src/System.js"

interface Pki {
  readonly authority: Certificates.Authority
  readonly settings: Readonly<Record<"metadata" | "rating" | "movie", TlsSettings>>
  /** An operator's client certificate, signed by the services' CA. */
  readonly operator: Certificates.Pair
  /** A certificate for "movie" that another CA signed. */
  readonly stranger: Certificates.Pair & { readonly caFile: string }
}
class TestPki extends Context.Tag("TestPki")<TestPki, Pki>() {}

const reloadInterval = Duration.millis(100)

/** What the services log (refused clients among it), captured rather than printed. */
const logs = Logs.make()

/**
 * The system with a TLS identity for each service; metadata requires client
 * certificates on every listener (`clientAuth: "all"`), the others on their Effect
 * RPC listener only (the default).
 */
const SystemWithTls = Layer.unwrapScoped(Effect.gen(function*() {
  const authority = yield* Certificates.authority()
  const settings = (pair: Certificates.Pair, clientAuth: "rpc" | "all" = "rpc"): TlsSettings => ({
    ...pair,
    caFile: authority.caFile,
    clientAuth,
    reloadInterval
  })
  const other = yield* Certificates.authority("another CA")
  const pki: Pki = {
    authority,
    settings: {
      metadata: settings(yield* authority.issue("metadata"), "all"),
      rating: settings(yield* authority.issue("rating")),
      movie: settings(yield* authority.issue("movie"))
    },
    operator: yield* authority.issue("operator"),
    stranger: { ...(yield* other.issue("movie")), caFile: other.caFile }
  }
  return Layer.mergeAll(
    System.layerTest({ tls: pki.settings }).pipe(Layer.provide(logs.layer)),
    Layer.succeed(TestPki, pki)
  )
}))

const at = (port: number) => `127.0.0.1:${port}`

/**
 * GetMovieDetails of a movie no one stored, through the gateway over TLS: NOT_FOUND
 * comes from the metadata service, so its answer shows the gateway reached its backend.
 */
const detailsOfNoSuchMovie = (caFile: string, port: number) =>
  Grpcurl.run([
    "-cacert",
    caFile,
    "-d",
    `{"movie_id":"no-such-movie"}`,
    at(port),
    "movieapp.v1.MovieService/GetMovieDetails"
  ])

/** grpcurl keeps redialling a server that refuses it until this bound (10 s by default). */
const refusedWithin = ["-connect-timeout", "2"]

/** The certificate a TLS listener presents to a new connection, by fingerprint. */
const presented = (port: number, options: NodeTls.ConnectionOptions = {}) =>
  Effect.async<string, Error>((resume) => {
    const socket = NodeTls.connect({ host: "127.0.0.1", port, servername: "localhost", ...options }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256
      socket.destroy()
      resume(Effect.succeed(fingerprint))
    })
    socket.once("error", (error) => resume(Effect.fail(error)))
    return Effect.sync(() => socket.destroy())
  })

/** `GET path` over HTTPS, trusting `ca`: the status. */
const httpsStatus = (port: number, path: string, options: https.RequestOptions) =>
  Effect.async<number, Error>((resume) => {
    const request = https.get({ host: "127.0.0.1", port, path, ...options }, (response) => {
      response.resume()
      resume(Effect.succeed(response.statusCode ?? 0))
    })
    request.once("error", (error) => resume(Effect.fail(error)))
    return Effect.sync(() => request.destroy())
  })

const read = (file: string) => readFileSync(file)

describe.runIf(Grpcurl.available())("TLS", () => {
  layer(SystemWithTls, { excludeTestServices: true, timeout: "60 seconds" })("every listener", (it) => {
    it.effect("grpcurl -cacert calls the gateway over TLS, whose backend calls go over mutual TLS", () =>
      Effect.gen(function*() {
        const { authority } = yield* TestPki
        const movie = yield* MovieServer.Ports
        const health = yield* Grpcurl.run(["-cacert", authority.caFile, at(movie.grpc), "grpc.health.v1.Health/Check"])
        assert.strictEqual(health.code, 0, health.stderr)
        assert.include(health.stdout, `"status": "SERVING"`)
        // NOT_FOUND comes from the metadata service: the gateway reached it over mutual TLS.
        const details = yield* detailsOfNoSuchMovie(authority.caFile, movie.grpc)
        assert.include(details.stderr, "Code: NotFound")
        const plaintext = yield* Grpcurl.run([
          ...refusedWithin,
          "-plaintext",
          at(movie.grpc),
          "grpc.health.v1.Health/Check"
        ])
        assert.notStrictEqual(plaintext.code, 0)
        const untrusted = yield* Grpcurl.run([
          ...refusedWithin,
          "-cacert",
          (yield* TestPki).stranger.caFile,
          at(movie.grpc),
          "list"
        ])
        assert.include(untrusted.stderr, "certificate signed by unknown authority")
      }))

    it.effect("where client certificates are required, grpcurl is served with one and refused without", () =>
      Effect.gen(function*() {
        const { authority, operator, stranger } = yield* TestPki
        const metadata = yield* MetadataServer.Ports
        const check = (args: ReadonlyArray<string>) =>
          Grpcurl.run(["-cacert", authority.caFile, ...args, at(metadata.grpc), "grpc.health.v1.Health/Check"])
        const withCertificate = yield* check(["-cert", operator.certFile, "-key", operator.keyFile])
        assert.strictEqual(withCertificate.code, 0, withCertificate.stderr)
        assert.include(withCertificate.stdout, `"status": "SERVING"`)
        const without = yield* check(refusedWithin)
        assert.notStrictEqual(without.code, 0)
        assert.notInclude(without.stdout, "SERVING")
        const foreign = yield* check([...refusedWithin, "-cert", stranger.certFile, "-key", stranger.keyFile])
        assert.notStrictEqual(foreign.code, 0)
        assert.notInclude(foreign.stdout, "SERVING")
      }))

    it.effect("the container health probe speaks TLS with the service's own settings, client certificate included", () =>
      Effect.gen(function*() {
        const { settings } = yield* TestPki
        const metadata = yield* MetadataServer.Ports
        const probe = yield* Command.run(
          [process.execPath, "--conditions=source", "--import", "tsx", "packages/platform/src/GrpcHealthProbe.ts"],
          {
            env: {
              SERVER_HOST: "127.0.0.1",
              SERVER_GRPC_PORT: String(metadata.grpc),
              SERVER_TLS_CERT_FILE: settings.metadata.certFile,
              SERVER_TLS_KEY_FILE: settings.metadata.keyFile,
              SERVER_TLS_CA_FILE: settings.metadata.caFile!
            }
          }
        )
        assert.strictEqual(probe.code, 0, probe.stderr)
        assert.strictEqual(probe.stdout.trim(), `127.0.0.1:${metadata.grpc}: SERVING`)
      }))

    it.effect("HTTP edges serve HTTPS; where client certificates are required, only to clients presenting one", () =>
      Effect.gen(function*() {
        const { authority, operator } = yield* TestPki
        const ca = read(authority.caFile)
        const movie = yield* MovieServer.Ports
        assert.strictEqual(yield* httpsStatus(movie.http, "/health", { ca }), 200)
        const metadata = yield* MetadataServer.Ports
        assert.strictEqual(
          yield* httpsStatus(metadata.http, "/health", {
            ca,
            cert: read(operator.certFile),
            key: read(operator.keyFile)
          }),
          200
        )
        const refused = yield* Effect.flip(httpsStatus(metadata.http, "/health", { ca }))
        assert.match(refused.message, /certificate required|socket hang up|ECONNRESET/)
      }))

    it.effect("the Effect RPC listener serves only clients whose certificate the CA signed", () =>
      Effect.gen(function*() {
        const { authority, settings, stranger } = yield* TestPki
        const metadata = yield* MetadataServer.Ports
        const address = { host: "127.0.0.1", port: metadata.rpc! }
        const getMetadata = (tls: Tls.ClientTls) =>
          Effect.scoped(Effect.gen(function*() {
            const client = yield* RpcTransport.makeClient(MetadataRpcs, address, { tls })
            return yield* client.GetMetadata({ movieId: "no-such-movie" as never })
          }))
        const ours = yield* Tls.make(settings.movie)
        const served = yield* Effect.flip(getMetadata({ certificates: ours, service: "metadata" }))
        assert.strictEqual(served._tag, "MetadataNotFound")
        // Signed by another CA, from a client that trusts the server (so the refusal is the
        // server's): refused in the handshake; the call fails without reaching the service,
        // where it would have been answered MetadataNotFound.
        const theirs = yield* Tls.make({ ...stranger, caFile: authority.caFile, clientAuth: "rpc", reloadInterval })
        const refused = yield* Effect.flip(getMetadata({ certificates: theirs, service: "metadata" }))
        assert.strictEqual(refused._tag, "RpcClientError")
        // No certificate at all: the server ends the connection after the handshake.
        const bare = yield* Effect.either(
          Effect.async<Buffer, Error>((resume) => {
            const socket = NodeTls.connect({
              host: "127.0.0.1",
              port: metadata.rpc!,
              ca: read(authority.caFile),
              servername: "metadata"
            })
            socket.once("data", (data) => resume(Effect.succeed(data)))
            socket.once("error", (error) => resume(Effect.fail(error)))
            socket.once("close", () => resume(Effect.fail(new Error("closed"))))
            return Effect.sync(() => socket.destroy())
          })
        )
        assert.isTrue(bare._tag === "Left", "a client without a certificate was served")
        assert.include(
          logs.at("WARN").filter((line) => line.message === "Effect RPC client refused by TLS").map((line) =>
            line.annotations.reason
          ),
          "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"
        )
        // A server whose certificate names another service is refused by the client.
        const rating = yield* RatingServer.Ports
        const impostor = yield* Effect.flip(
          Effect.scoped(Effect.gen(function*() {
            const client = yield* RpcTransport.makeClient(MetadataRpcs, { host: "127.0.0.1", port: rating.rpc! }, {
              tls: { certificates: ours, service: "metadata" }
            })
            return yield* client.GetMetadata({ movieId: "no-such-movie" as never })
          }))
        )
        assert.strictEqual(impostor._tag, "RpcClientError")
      }).pipe(Effect.scoped))

    it.effect("the ingestor publishes to the rating service over mutual TLS, and is refused without its certificate", () =>
      Effect.gen(function*() {
        const { authority, operator } = yield* TestPki
        const rating = yield* RatingServer.Ports
        // Without KAFKA_BROKERS (which this run's environment may hold), the ingestor publishes over Effect RPC.
        const ingest = (env: Record<string, string>) =>
          Command.run([
            process.execPath,
            "--conditions=source",
            "--import",
            "tsx",
            "packages/ratingingestor/src/main.ts",
            "--rating-address",
            at(rating.rpc!),
            "--generate",
            "20"
          ], { env: { ...env, KAFKA_BROKERS: undefined } })
        const served = yield* ingest({
          RATING_TOKEN: Redacted.value(yield* Tokens.ingestorToken),
          RATING_TLS_CA_FILE: authority.caFile,
          RATING_TLS_CERT_FILE: operator.certFile,
          RATING_TLS_KEY_FILE: operator.keyFile
        })
        assert.strictEqual(served.code, 0, served.stderr)
        assert.match(served.stdout, /^read 20, published 20, skipped 0/)
        const refused = yield* ingest({})
        assert.strictEqual(refused.code, 1)
        assert.include(refused.stderr, `cannot reach the rating service at ${at(rating.rpc!)}`)
      }))

    it.effect("a renewed certificate is served by every listener without a restart", () =>
      Effect.gen(function*() {
        const { authority, operator, settings } = yield* TestPki
        const metadata = yield* MetadataServer.Ports
        const ca = read(authority.caFile)
        const client = { ca, cert: read(operator.certFile), key: read(operator.keyFile) }
        const before = yield* Certificates.fingerprint(settings.metadata.certFile)
        assert.strictEqual(yield* presented(metadata.grpc, client), before)
        const renewed = yield* authority.issue("metadata")
        const after = yield* Certificates.fingerprint(renewed.certFile)
        assert.notStrictEqual(after, before)
        for (
          const [listener, port] of [["gRPC", metadata.grpc], ["HTTP", metadata.http], ["Effect RPC", metadata.rpc!]]
        ) {
          yield* Poll.until(presented(Number(port), client), (seen) => seen === after, {
            what: `the ${listener} listener to present the renewed certificate`,
            timeout: "10 seconds",
            interval: "50 millis"
          })
        }
        // The gateway's calls to the renewed metadata service still go through.
        const movie = yield* MovieServer.Ports
        const details = yield* detailsOfNoSuchMovie(authority.caFile, movie.grpc)
        assert.include(details.stderr, "Code: NotFound")
      }))
  })
})

describe("TLS files that cannot serve", () => {
  layer(Layer.empty, { excludeTestServices: true, timeout: "60 seconds" })("a service", (it) => {
    it.effect("does not start, and says which setting names the file and why, never the key", () =>
      Effect.gen(function*() {
        const authority = yield* Certificates.authority()
        const metadata = yield* authority.issue("metadata")
        const rating = yield* authority.issue("rating")
        const cases = [
          [{ SERVER_TLS_CERT_FILE: metadata.certFile }, "SERVER_TLS_KEY_FILE"],
          [
            { SERVER_TLS_CERT_FILE: metadata.certFile, SERVER_TLS_KEY_FILE: rating.keyFile },
            `SERVER_TLS_KEY_FILE (${rating.keyFile}): is not the key of the certificate in SERVER_TLS_CERT_FILE`
          ],
          [
            { SERVER_TLS_CERT_FILE: `${authority.dir}/missing.pem`, SERVER_TLS_KEY_FILE: metadata.keyFile },
            `SERVER_TLS_CERT_FILE (${authority.dir}/missing.pem): cannot read it: no such file`
          ]
        ] as const
        for (const [env, expected] of cases) {
          const service = yield* ServiceProcess.start("packages/metadata/src/main.ts", {
            ...(yield* Tokens.serviceEnv),
            ...env,
            SERVER_HOST: "127.0.0.1",
            SERVER_GRPC_PORT: "0",
            SERVER_HTTP_PORT: "0",
            SERVER_RPC_PORT: "0"
          })
          const exit = yield* service.exited
          assert.strictEqual(exit.code, 1)
          const failure = service.logs().find((line) => line.message === "failed; exiting")
          const text = JSON.stringify(failure)
          assert.include(text, expected)
          assert.notInclude(JSON.stringify(service.logs()), "PRIVATE KEY")
        }
      }).pipe(Effect.scoped, Effect.provide(Tokens.layer)))
  })
})
