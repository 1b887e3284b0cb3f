/**
 * A service's TLS identity: its certificate and key, and the CA whose
 * certificates it accepts from peers, read from the files that `SERVER_TLS_*`
 * name (see Config's TlsSettings) and kept current. The files are read again
 * every `SERVER_TLS_RELOAD_INTERVAL`; a change that makes a valid pair (a
 * renewed certificate, a Kubernetes Secret updated in place) is handed to every
 * listener for its new connections, while connections already open keep theirs.
 * A change that does not (a key written before its certificate) is ignored until
 * it does, and the service keeps serving the pair it has.
 *
 * The files' content never reaches a log or an error: only their paths, the
 * certificate's subject and expiry, and the reason a file is refused.
 */
import { Context, Data, Effect, Layer, Option, Schedule, type Scope } from "effect"
import { createPrivateKey, X509Certificate } from "node:crypto"
import { readFile } from "node:fs/promises"
import * as NodeTls from "node:tls"
import { type TlsSettings, tlsSettings } from "./Config.js"

/** The PEM content of the files. */
export interface Material {
  readonly cert: Buffer
  readonly key: Buffer
  readonly ca?: Buffer | undefined
}

/** A TLS file that cannot be used: which setting names it, where it is, and why. The service does not start. */
export class TlsError extends Data.TaggedError("TlsError")<{
  readonly setting: string
  readonly path: string
  readonly reason: string
}> {
  constructor(props: { readonly setting: string; readonly path: string; readonly reason: string }) {
    super(props)
    // An operator's problem: the line says what to fix, a stack would bury it.
    this.stack = `${this.name}: ${this.message}`
  }

  override get message() {
    return `${this.setting} (${this.path}): ${this.reason}`
  }
}

/** Where a listener is: the Effect RPC listener is the internal one. */
export type Listener = "grpc" | "http" | "rpc"

/** The current TLS material of a service, and who must present a client certificate. */
export interface Certificates {
  readonly settings: TlsSettings
  /** The content of the files as last accepted. */
  readonly current: () => Material
  /** The same as a context, made once per change, that new client connections use. */
  readonly secureContext: () => NodeTls.SecureContext
  /** Calls `listener` after each accepted change of the files; the function returned stops that. */
  readonly onChange: (listener: (material: Material) => void) => () => void
  /** Whether `listener` admits only clients presenting a certificate the CA signed. */
  readonly requiresClientCertificate: (listener: Listener) => boolean
}

/** This service's TLS identity, or none: its listeners then serve plaintext and its RPC calls are plaintext. */
export class ServerTls
  extends Context.Tag("@movieapp/platform/Tls/ServerTls")<ServerTls, Option.Option<Certificates>>()
{}

const reasonOf = (error: unknown): string => {
  const coded = error as { readonly code?: unknown; readonly message?: unknown }
  if (coded.code === "ENOENT") return "no such file"
  if (coded.code === "EACCES") return "not allowed to read it"
  return typeof coded.message === "string" ? coded.message : String(error)
}

/** The content of the file a setting names, or a {@link TlsError} naming the setting and why it cannot be read. */
export const readOne = (setting: string, path: string): Effect.Effect<Buffer, TlsError> =>
  Effect.tryPromise({
    try: () => readFile(path),
    catch: (error) => new TlsError({ setting, path, reason: `cannot read it: ${reasonOf(error)}` })
  })

/** Reads the files and checks that they make a usable identity: a certificate, its own key, a CA certificate. */
export const read = (settings: TlsSettings): Effect.Effect<Material, TlsError> =>
  Effect.gen(function*() {
    const cert = yield* readOne(tlsSettings.certFile, settings.certFile)
    const key = yield* readOne(tlsSettings.keyFile, settings.keyFile)
    const ca = settings.caFile === undefined ? undefined : yield* readOne(tlsSettings.caFile, settings.caFile)
    const refuse = (setting: string, path: string) => (reason: string) => new TlsError({ setting, path, reason })
    const certificate = yield* Effect.try({
      try: () => new X509Certificate(cert),
      catch: (error) => refuse(tlsSettings.certFile, settings.certFile)(`not a PEM certificate: ${reasonOf(error)}`)
    })
    const privateKey = yield* Effect.try({
      // The reason is OpenSSL's ("DECODER routines::unsupported"), never the key.
      try: () => createPrivateKey(key),
      catch: (error) => refuse(tlsSettings.keyFile, settings.keyFile)(`not a PEM private key: ${reasonOf(error)}`)
    })
    if (!certificate.checkPrivateKey(privateKey)) {
      return yield* refuse(tlsSettings.keyFile, settings.keyFile)(
        `is not the key of the certificate in ${tlsSettings.certFile} (${settings.certFile})`
      )
    }
    if (ca !== undefined) {
      yield* Effect.try({
        try: () => new X509Certificate(ca),
        catch: (error) => refuse(tlsSettings.caFile, settings.caFile!)(`not a PEM certificate: ${reasonOf(error)}`)
      })
    }
    return { cert, key, ...(ca === undefined ? {} : { ca }) }
  })

const sameMaterial = (a: Material, b: Material) =>
  a.cert.equals(b.cert) && a.key.equals(b.key) &&
  (a.ca === undefined ? b.ca === undefined : b.ca !== undefined && a.ca.equals(b.ca))

/** What is logged of a certificate: whom it names and until when. */
const describe = (material: Material) => {
  const certificate = new X509Certificate(material.cert)
  return {
    "tls.subject": certificate.subject.replaceAll("\n", ", "),
    "tls.names": certificate.subjectAltName ?? "",
    "tls.valid_to": certificate.validTo
  }
}

/**
 * Reads the files (failing with a {@link TlsError} when they cannot serve), then
 * reads them again every `reloadInterval` for as long as the scope lives.
 */
export const make = (settings: TlsSettings): Effect.Effect<Certificates, TlsError, Scope.Scope> =>
  Effect.gen(function*() {
    let material = yield* read(settings)
    let context = NodeTls.createSecureContext(material)
    const listeners = new Set<(material: Material) => void>()
    yield* Effect.logInfo("TLS certificate loaded").pipe(Effect.annotateLogs(describe(material)))
    let refused: string | undefined
    const reload = read(settings).pipe(
      Effect.flatMap((next) =>
        Effect.suspend(() => {
          refused = undefined
          if (sameMaterial(next, material)) return Effect.void
          context = NodeTls.createSecureContext(next)
          material = next
          const failures: Array<string> = []
          for (const listener of listeners) {
            // One listener refusing the change must not keep it from the others, nor stop the reloading.
            try {
              listener(next)
            } catch (error) {
              failures.push(reasonOf(error))
            }
          }
          return Effect.logInfo("TLS certificate reloaded").pipe(
            Effect.annotateLogs(describe(next)),
            Effect.zipRight(
              failures.length === 0
                ? Effect.void
                : Effect.logWarning("a listener could not take the reloaded certificate").pipe(
                  Effect.annotateLogs("reason", failures.join("; "))
                )
            )
          )
        })
      ),
      Effect.catchAll((error) => {
        // Said once per reason: a file being rewritten is refused until it is whole.
        if (refused === error.message) return Effect.void
        refused = error.message
        return Effect.logWarning("TLS files changed but cannot be used; serving the previous certificate").pipe(
          Effect.annotateLogs("reason", error.message)
        )
      })
    )
    yield* reload.pipe(
      Effect.repeat(Schedule.spaced(settings.reloadInterval)),
      Effect.delay(settings.reloadInterval),
      Effect.interruptible,
      Effect.forkScoped
    )
    const requireClients = settings.caFile !== undefined
    return {
      settings,
      current: () => material,
      secureContext: () => context,
      onChange: (listener) => {
        listeners.add(listener)
        return () => listeners.delete(listener)
      },
      requiresClientCertificate: (listener) => requireClients && (listener === "rpc" || settings.clientAuth === "all")
    } satisfies Certificates
  })

/** {@link ServerTls} from the settings: none without them. */
export const layer = (settings: TlsSettings | undefined): Layer.Layer<ServerTls, TlsError> =>
  Layer.scoped(
    ServerTls,
    settings === undefined ? Effect.succeed(Option.none()) : Effect.map(make(settings), Option.some)
  )

/** The options of a TLS server for `listener`: the material, and whether to demand a client certificate. */
export const serverOptions = (certificates: Certificates, listener: Listener): NodeTls.TlsOptions => {
  const required = certificates.requiresClientCertificate(listener)
  return { ...certificates.current(), requestCert: required, rejectUnauthorized: required }
}

/**
 * Keeps a Node TLS server (an `https` or `tls` server) on the current material:
 * new connections get the new certificate, open ones keep theirs.
 */
export const follow = (
  certificates: Certificates,
  server: Pick<NodeTls.Server, "setSecureContext">
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => certificates.onChange((material) => server.setSecureContext(material))),
    (stop) => Effect.sync(stop)
  )

/** The client side of an internal call: verify the server against the CA, expect it to be `service`, present ours. */
export interface ClientTls {
  readonly certificates: Certificates
  /** The service dialled: its certificate must name it (a DNS subject alternative name). */
  readonly service: string
}

/** The options of `tls.connect` for an internal call (a context per change, not per connection). */
export const clientOptions = (client: ClientTls): NodeTls.ConnectionOptions => ({
  secureContext: client.certificates.secureContext(),
  // Instances are dialled by address; who they must be is the service's name.
  servername: client.service,
  checkServerIdentity: (_host, certificate) => NodeTls.checkServerIdentity(client.service, certificate)
})
