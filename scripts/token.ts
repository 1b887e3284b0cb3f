/**
 * Keys and tokens for a deployment without an identity provider (Compose, a
 * local cluster, a test bench): what docs/configuration.md, "Issuing tokens",
 * walks through.
 *
 *   npm run token -- keys <dir>
 *       writes <dir>/private.pem (PKCS#8, mode 600) and <dir>/public.pem (SPKI),
 *       an ES256 (P-256) pair; the services get public.pem (AUTH_PUBLIC_KEY_FILE)
 *   npm run token -- sign --key <dir>/private.pem --sub <user> [--scope "metadata:write ratings:ingest"]
 *       [--issuer movieapp-dev] [--audience movieapp] [--expires "1 hour"]
 *       prints a token (ES256 or RS256, as the key is); issuer and audience must
 *       be the services' AUTH_ISSUER and AUTH_AUDIENCE
 *
 * A key made elsewhere works too, e.g. `openssl ecparam -name prime256v1 -genkey
 * -noout | openssl pkcs8 -topk8 -nocrypt -out private.pem` and `openssl pkey -in
 * private.pem -pubout -out public.pem` (or `openssl genpkey -algorithm RSA
 * -pkeyopt rsa_keygen_bits:3072` for RS256).
 */
import * as DevelopmentTokens from "@movieapp/platform/DevelopmentTokens"
import { Duration } from "effect"
import { createPrivateKey, generateKeyPairSync } from "node:crypto"
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const [command, ...args] = process.argv.slice(2)
const option = (name: string): string | undefined => {
  const index = args.indexOf(`--${name}`)
  return index === -1 ? undefined : args[index + 1]
}
const fail = (message: string): never => {
  console.error(`token: ${message} (see the comment at the top of scripts/token.ts)`)
  process.exit(2)
}

if (command === "keys") {
  const dir = args[0] ?? fail("keys needs a directory")
  mkdirSync(dir, { recursive: true })
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
  writeFileSync(join(dir, "private.pem"), privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 })
  chmodSync(join(dir, "private.pem"), 0o600)
  writeFileSync(join(dir, "public.pem"), publicKey.export({ type: "spki", format: "pem" }), { mode: 0o644 })
  console.log(
    `wrote ${join(dir, "private.pem")} (keep it to yourself) and ${join(dir, "public.pem")} (for the services)`
  )
} else if (command === "sign") {
  const key = createPrivateKey(readFileSync(option("key") ?? fail("sign needs --key <private.pem>"), "utf8"))
  const algorithm = key.asymmetricKeyType === "ec"
    ? "ES256"
    : key.asymmetricKeyType === "rsa"
    ? "RS256"
    : fail("the key must be EC P-256 (ES256) or RSA (RS256)")
  const expires = option("expires") ?? "1 hour"
  const expiresIn = Duration.decodeUnknown(expires)
  if (expiresIn._tag === "None") fail(`--expires: not a duration: ${expires}`)
  const token = await DevelopmentTokens.sign(key, algorithm, {
    sub: option("sub") ?? fail("sign needs --sub <user>"),
    scope: option("scope"),
    issuer: option("issuer") ?? DevelopmentTokens.ISSUER,
    audience: option("audience") ?? DevelopmentTokens.AUDIENCE,
    expiresIn: expiresIn._tag === "Some" ? expiresIn.value : Duration.hours(1)
  })
  console.log(token)
} else {
  fail(`unknown command ${command ?? "(none)"}: keys or sign`)
}
