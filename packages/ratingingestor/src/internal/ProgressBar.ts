/** A progress bar on stderr for interactive runs; a no-op otherwise, so logs and pipes stay clean. */
import cliProgress from "cli-progress"
import { Effect, type Scope } from "effect"

export interface ProgressBar {
  readonly advance: (count: number) => Effect.Effect<void>
}

const silent: ProgressBar = { advance: () => Effect.void }

/** The bar is drawn from acquisition until the scope closes. */
export const make = (
  options: { readonly total: number; readonly enabled: boolean }
): Effect.Effect<ProgressBar, never, Scope.Scope> =>
  options.enabled
    ? Effect.acquireRelease(
      Effect.sync(() => {
        const bar = new cliProgress.SingleBar({
          stream: process.stderr,
          format: "publishing [{bar}] {percentage}% | {value}/{total} events | ETA {eta_formatted}",
          hideCursor: true
        }, cliProgress.Presets.shades_classic)
        bar.start(options.total, 0)
        return bar
      }),
      (bar) => Effect.sync(() => bar.stop())
    ).pipe(Effect.map((bar): ProgressBar => ({ advance: (count) => Effect.sync(() => bar.increment(count)) })))
    : Effect.succeed(silent)
