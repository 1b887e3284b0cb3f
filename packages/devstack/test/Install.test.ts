/**
 * `npm ci` runs no dependency's install script, and says so without a warning:
 * package.json's `allowScripts` names every installed package that has one, each
 * denied (their binaries come as platform packages; the scripts only check them,
 * or build from source where no prebuilt one exists).
 */
import { assert, describe, it } from "@effect/vitest"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const repo = fileURLToPath(new URL("../../..", import.meta.url))

/** Every package under node_modules (scoped ones and nested node_modules included) with an install-time script. */
const packagesWithInstallScripts = (): ReadonlyArray<string> => {
  const found = new Set<string>()
  const visit = (modules: string) => {
    if (!existsSync(modules)) return
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith(".")) continue
      const names = entry.startsWith("@")
        ? readdirSync(join(modules, entry)).map((name) => `${entry}/${name}`)
        : [entry]
      for (const name of names) {
        const manifest = join(modules, name, "package.json")
        if (!existsSync(manifest)) continue
        const { scripts = {} } = JSON.parse(readFileSync(manifest, "utf8")) as { scripts?: Record<string, string> }
        if (["preinstall", "install", "postinstall"].some((script) => script in scripts)) found.add(name)
        visit(join(modules, name, "node_modules"))
      }
    }
  }
  visit(join(repo, "node_modules"))
  return [...found].sort()
}

describe("installing", () => {
  it("allowScripts covers every dependency with an install script, and lets none run", () => {
    const { allowScripts } = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
      allowScripts: Record<string, boolean>
    }
    assert.deepStrictEqual(Object.keys(allowScripts).sort(), packagesWithInstallScripts())
    for (const [name, allowed] of Object.entries(allowScripts)) assert.isFalse(allowed, name)
  })
})
