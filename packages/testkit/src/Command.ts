/**
 * A command-line program run as people run it: its output piped (a script, CI,
 * `| less`), or on a terminal, a pseudo-terminal that util-linux's `script`
 * provides (its stdout and stderr then arrive together, as a terminal shows them).
 */
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"

const repo = resolve(fileURLToPath(new URL("../../..", import.meta.url)))

export interface Outcome {
  readonly code: number
  readonly stdout: string
  /** Empty on a terminal: everything is in `stdout`. */
  readonly stderr: string
}

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`

/** Runs `argv` in the repository with `env` added to this process's environment (a variable set to undefined is removed). */
export const run = (
  argv: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string | undefined>; readonly terminal?: boolean } = {}
): Effect.Effect<Outcome> =>
  Effect.async<Outcome>((resume) => {
    const [file, args] = options.terminal === true
      ? ["script", ["--quiet", "--return", "--command", argv.map(quote).join(" "), "/dev/null"]] as const
      : [argv[0]!, argv.slice(1)] as const
    const child = execFile(
      file,
      args,
      { cwd: repo, env: { ...process.env, ...options.env }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resume(Effect.succeed({
          code: error ? (typeof error.code === "number" ? error.code : 1) : 0,
          // A terminal ends lines with CR LF.
          stdout: stdout.replaceAll("\r\n", "\n"),
          stderr
        }))
    )
    return Effect.sync(() => void child.kill())
  })

/** Whether `text` holds terminal escape sequences (colours, styles). */
export const hasEscapes = (text: string): boolean => text.includes("\x1b[")
