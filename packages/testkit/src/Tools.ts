/** Command-line tools the tests run, which the scripts under scripts/ install pinned in .tools/bin. */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const repo = path.resolve(fileURLToPath(new URL("../../..", import.meta.url)))

/** `.tools/bin/<name>` (`scripts/<name>.sh` installs it), else one on the PATH; undefined when neither is there. */
export const binary = (name: string): string | undefined => {
  const local = path.join(repo, ".tools/bin", name)
  if (fs.existsSync(local)) return local
  try {
    return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim() || undefined
  } catch {
    return undefined
  }
}
