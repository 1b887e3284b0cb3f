/**
 * Certificates made for a test with the openssl command line, as an operator
 * would make them: a CA of the test's own, and certificates it signs, each named
 * by DNS names (the service's name, `localhost`) and 127.0.0.1, good for servers
 * and for clients. Files live in a temporary directory removed with the scope.
 */
import { Effect, type Scope } from "effect"
import { execFile } from "node:child_process"
import { X509Certificate } from "node:crypto"
import { mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"

const openssl = (args: ReadonlyArray<string>, cwd: string) =>
  Effect.async<void, Error>((resume) => {
    execFile("openssl", [...args], { cwd }, (error, _stdout, stderr) =>
      resume(error ? Effect.fail(new Error(`openssl ${args[0]}: ${stderr || error.message}`)) : Effect.void))
  })

/** A key pair's files: a PEM certificate and its PEM private key. */
export interface Pair {
  readonly certFile: string
  readonly keyFile: string
}

export interface Authority {
  /** Where the files are. */
  readonly dir: string
  /** The CA's certificate (what peers trust). */
  readonly caFile: string
  /**
   * Signs a new certificate for `name` (its common name and first DNS name; also
   * named `localhost` and 127.0.0.1), written as `<file>.pem` and `<file>.key`
   * (`file` defaults to `name`; issuing again to the same file replaces it).
   */
  readonly issue: (name: string, options?: { readonly file?: string }) => Effect.Effect<Pair, Error>
}

let serial = 0

/** A new CA, in a directory of its own removed with the scope. */
export const authority = (name = "movieapp test CA"): Effect.Effect<Authority, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => mkdtemp(join(tmpdir(), "movieapp-tls-"))),
      (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
    )
    const curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    yield* openssl([
      "req",
      "-x509",
      ...curve,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign"
    ], dir)
    const issue = (name: string, options: { readonly file?: string } = {}) =>
      Effect.gen(function*() {
        const file = options.file ?? name
        // Written beside, then renamed over: a reader never sees half a file.
        const staged = `${file}.next-${++serial}`
        yield* Effect.promise(() =>
          writeFile(
            join(dir, `${staged}.ext`),
            [
              "basicConstraints=CA:FALSE",
              "keyUsage=critical,digitalSignature",
              "extendedKeyUsage=serverAuth,clientAuth",
              `subjectAltName=DNS:${name},DNS:localhost,IP:127.0.0.1`
            ].join("\n")
          )
        )
        yield* openssl(
          ["req", ...curve, "-keyout", `${staged}.key`, "-out", `${staged}.csr`, "-subj", `/CN=${name}`],
          dir
        )
        yield* openssl([
          "x509",
          "-req",
          "-in",
          `${staged}.csr`,
          "-CA",
          "ca.pem",
          "-CAkey",
          "ca.key",
          "-set_serial",
          String(Date.now() * 1000 + serial),
          "-days",
          "2",
          "-extfile",
          `${staged}.ext`,
          "-out",
          `${staged}.pem`
        ], dir)
        yield* Effect.promise(async () => {
          await rename(join(dir, `${staged}.key`), join(dir, `${file}.key`))
          await rename(join(dir, `${staged}.pem`), join(dir, `${file}.pem`))
        })
        return { certFile: join(dir, `${file}.pem`), keyFile: join(dir, `${file}.key`) }
      })
    return { dir, caFile: join(dir, "ca.pem"), issue }
  })

/** The SHA-256 fingerprint of the certificate in `file`, as Node's `getPeerCertificate()` reports it. */
export const fingerprint = (file: string): Effect.Effect<string> =>
  Effect.promise(() => readFile(file)).pipe(Effect.map((pem) => new X509Certificate(pem).fingerprint256))
