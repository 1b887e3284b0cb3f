/** The resolve hook of record-imports.mjs. */
import { appendFileSync } from "node:fs"

const file = process.env.RECORD_IMPORTS_TO

export const resolve = async (specifier, context, nextResolve) => {
  const resolved = await nextResolve(specifier, context)
  if (file !== undefined) appendFileSync(file, `${resolved.url}\n`)
  return resolved
}
