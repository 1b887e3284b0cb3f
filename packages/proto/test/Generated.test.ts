/** The committed generated code (and descriptor set) must be what `npm run generate` makes from proto/. */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const repo = resolve(fileURLToPath(new URL("../../..", import.meta.url)))
const gen = "packages/proto/src/gen"

const files = (root: string): Array<string> =>
  readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort()

describe("generated code", () => {
  it("is up to date with proto/", () => {
    const scratch = mkdtempSync(join(tmpdir(), "movieapp-generate-"))
    try {
      execFileSync(process.execPath, ["--import", "tsx", "scripts/generate.ts", scratch], { cwd: repo, stdio: "pipe" })
      const fresh = join(scratch, gen)
      const committed = join(repo, gen)
      assert.deepStrictEqual(
        files(fresh),
        files(committed),
        "run `npm run generate`: the set of generated files differs"
      )
      for (const file of files(fresh)) {
        assert.isTrue(
          readFileSync(join(fresh, file)).equals(readFileSync(join(committed, file))),
          `${gen}/${file} is stale: run \`npm run generate\``
        )
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true })
    }
  }, 120_000)
})
