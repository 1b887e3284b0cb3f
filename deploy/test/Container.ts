/**
 * Runs a "container" of a built image (deploy/test/Dockerfile.ts) as a process:
 * the command the image and its deployment give, in the image's working
 * directory, with the image's environment plus the container's and nothing of
 * the test run's, as the image's user when the test runs as root, with volume
 * mounts mapped onto host paths.
 */
import { Deferred, type Duration, Effect, type Scope } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { createInterface } from "node:readline"
import type { Built } from "./Dockerfile.js"

/** uid of an image's USER: the official node images create `node` as 1000. */
export const uids: Readonly<Record<string, number>> = { node: 1000 }

export interface Spec {
  readonly name: string
  /** What the container runs (ENTRYPOINT and CMD or args, as the deployment composes them). */
  readonly argv: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  /** Container path -> host path. */
  readonly mounts?: Readonly<Record<string, string>>
}

export interface Running {
  readonly name: string
  readonly pid: number
  /** stdout and stderr lines so far. */
  readonly output: ReadonlyArray<string>
  readonly exit: Deferred.Deferred<number | null>
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
}

/** A container path as this machine sees it: inside a mount, or inside the image. */
const hostPath = (image: Built, mounts: Readonly<Record<string, string>>, argument: string): string => {
  if (!argument.startsWith("/")) return argument
  const mount = Object.keys(mounts).find((m) => argument === m || argument.startsWith(`${m}/`))
  return mount ? path.join(mounts[mount]!, argument.slice(mount.length)) : path.join(image.root, argument)
}

/**
 * A bind mount shows its source inside the container whatever the permissions of
 * the host directories above it; a process running as the image's user here would
 * need to traverse them (a checkout under a private temporary directory, say). So
 * each mount's source is copied next to the image, where that user can reach it.
 */
const stage = (image: Built, mounts: Readonly<Record<string, string>>): Record<string, string> => {
  if (Object.keys(mounts).length === 0) return {}
  const root = fs.mkdtempSync(path.join(path.dirname(image.root), "mounts-"))
  fs.chmodSync(root, 0o755)
  return Object.fromEntries(Object.entries(mounts).map(([target, source], i) => {
    const staged = path.join(root, String(i))
    fs.cpSync(source, staged, { recursive: true })
    return [target, staged]
  }))
}

/** Starts `spec` on `image`; the process is killed when the scope closes if it is still running. */
export const start = (image: Built, spec: Spec): Effect.Effect<Running, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const exit = yield* Deferred.make<number | null>()
      const mounts = stage(image, spec.mounts ?? {})
      const [command, ...args] = spec.argv.map((a, i) => i === 0 ? a : hostPath(image, mounts, a))
      const user = image.config.user === undefined ? undefined : uids[image.config.user]
      const asUser = user !== undefined && process.getuid?.() === 0 ? { uid: user, gid: user } : {}
      const child = yield* Effect.try({
        try: () =>
          spawn(command!, args, {
            cwd: path.join(image.root, image.config.workdir),
            env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...image.config.env, ...spec.env },
            stdio: ["ignore", "pipe", "pipe"],
            ...asUser
          }),
        catch: (cause) => new Error(`${spec.name}: cannot start ${spec.argv.join(" ")}: ${cause}`)
      })
      const output: Array<string> = []
      createInterface({ input: child.stdout! }).on("line", (line) => output.push(line))
      createInterface({ input: child.stderr! }).on("line", (line) => output.push(line))
      child.on("exit", (code) => Deferred.unsafeDone(exit, Effect.succeed(code)))
      child.on("error", (error) => {
        output.push(String(error))
        Deferred.unsafeDone(exit, Effect.succeed(null))
      })
      return {
        name: spec.name,
        pid: child.pid ?? -1,
        output,
        exit,
        signal: (signal: NodeJS.Signals) => Effect.sync(() => void child.kill(signal))
      } satisfies Running
    }),
    (running) =>
      Deferred.isDone(running.exit).pipe(Effect.flatMap((done) => done ? Effect.void : running.signal("SIGKILL")))
  )

/** Waits for the process to end, for at most `timeout`. */
export const awaitExit = (running: Running, timeout: Duration.DurationInput = "30 seconds") =>
  Deferred.await(running.exit).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new Error(`${running.name} did not end in time:\n${running.output.slice(-20).join("\n")}`)
    })
  )
