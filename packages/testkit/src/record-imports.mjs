/**
 * Preloaded with `--import` (see ImportRecorder): every module the process then
 * resolves through the ES module loader, its URL on a line of the file named by
 * RECORD_IMPORTS_TO. The hooks run on the loader's own thread.
 */
import { register } from "node:module"

register(new URL("./record-imports-hooks.mjs", import.meta.url))
