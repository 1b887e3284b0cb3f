/** The repository root, which the deployment files name their paths from. */
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const repo = path.resolve(fileURLToPath(new URL("../..", import.meta.url)))
