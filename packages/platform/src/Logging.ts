/** Structured JSON logs, one object per line, filtered by level. */
import { Layer, Logger } from "effect"
import type { LogConfig } from "./Config.js"

export const layer = (config: LogConfig): Layer.Layer<never> =>
  Layer.merge(Logger.json, Logger.minimumLogLevel(config.level))
