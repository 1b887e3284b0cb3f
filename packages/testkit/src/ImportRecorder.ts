/**
 * What a child process loads: the environment that makes it record the URL of
 * every module it resolves through the ES module loader (imports, static or
 * dynamic, of ES modules and of CommonJS packages alike; not a CommonJS
 * package's own `require`s), and the packages read back from the record.
 */
import { Effect, type Scope } from "effect"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface ImportRecorder {
  /** Add to the child's environment. */
  readonly env: Record<string, string>
  /** The packages (`name` or `@scope/name`) whose modules the child has resolved so far. */
  readonly packages: () => ReadonlySet<string>
}

export const make: Effect.Effect<ImportRecorder, never, Scope.Scope> = Effect.map(
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "imports-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  ),
  (dir) => {
    const file = join(dir, "imports.txt")
    const preload = new URL("./record-imports.mjs", import.meta.url).href
    return {
      env: { NODE_OPTIONS: `--import ${preload}`, RECORD_IMPORTS_TO: file },
      packages: () => {
        let text = ""
        try {
          text = readFileSync(file, "utf8")
        } catch {
          // Nothing resolved yet.
        }
        return new Set(
          text.split("\n").flatMap((url) => {
            const found = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
            return found === null ? [] : [found[1]!]
          })
        )
      }
    }
  }
)
