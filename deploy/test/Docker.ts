/**
 * A real Docker engine for the image and Compose suites, driven through the
 * docker CLI as an operator drives it. `scripts/docker.sh start` starts one, whose
 * socket (`.data/docker/docker.sock`) is found without DOCKER_HOST; DOCKER_HOST
 * names another. Without the engine or its Compose plugin (which also builds the
 * images, with BuildKit), the suites are skipped locally with the reason, and
 * fail in CI (CI=true).
 *
 * Containers always run on the host's network: these machines have no bridge.
 */
import { Command } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import * as RequiredServer from "@movieapp/testkit/RequiredServer"
import { Data, Effect, Schedule, type Scope, Stream } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { repo } from "./Repo.js"

const localSocket = path.join(repo, ".data/docker/docker.sock")

/** DOCKER_HOST for the CLI: the caller's, else the engine of scripts/docker.sh when its socket exists. */
export const host: string | undefined = process.env.DOCKER_HOST ??
  (fs.existsSync(localSocket) ? `unix://${localSocket}` : undefined)
const cliEnv: Record<string, string> = host === undefined ? {} : { DOCKER_HOST: host }

/** Why `docker <args>` does not work here, or undefined when it does. */
const problem = (args: ReadonlyArray<string>): Promise<string | undefined> =>
  new Promise((resolve) =>
    execFile(
      "docker",
      args,
      { env: { ...process.env, ...cliEnv }, timeout: 20_000 },
      (error, _stdout, stderr) =>
        resolve(
          error === null ? undefined : `(docker ${args.join(" ")}: ${(stderr.trim() || error.message).split("\n")[0]})`
        )
    )
  )

const start = "bash scripts/docker.sh start"

/** Whether the suites that need the docker CLI with its Compose plugin (no engine) run. */
export const composeAvailable = async (): Promise<boolean> =>
  RequiredServer.required({
    name: "Docker Compose",
    problem: await problem(["compose", "version"]).then((p) => p && `is not installed ${p}`),
    start
  })

/** Whether the suites that build and run images run: the engine answers, and Compose is there. */
export const engineAvailable = async (): Promise<boolean> => {
  const missing = (await Promise.all([["version"], ["compose", "version"]].map(problem))).filter((p) => p !== undefined)
  return RequiredServer.required({
    name: "Docker",
    problem: missing.length === 0 ? undefined : `is not usable ${missing.join(" ")}`,
    start
  })
}

export class DockerError extends Data.TaggedError("DockerError")<{
  readonly args: ReadonlyArray<string>
  readonly code: number
  readonly stderr: string
}> {
  override get message() {
    return `docker ${this.args.join(" ")} exited ${this.code}: ${this.stderr}`
  }
}

const text = <E>(stream: Stream.Stream<Uint8Array, E>) => stream.pipe(Stream.decodeText(), Stream.mkString)

interface Options {
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>
}

/** `docker <args>` against the engine, from the repository root, to its end: exit code, standard output and error. */
const spawn = (args: ReadonlyArray<string>, options: Options) =>
  Effect.scoped(Effect.gen(function*() {
    const process = yield* Command.make("docker", ...args).pipe(
      Command.env({ ...cliEnv, ...options.env }),
      Command.workingDirectory(repo),
      Command.start
    )
    const [stdout, stderr, code] = yield* Effect.all([text(process.stdout), text(process.stderr), process.exitCode], {
      concurrency: "unbounded"
    })
    return { code: code as number, stdout, stderr }
  })).pipe(Effect.orDie, Effect.provide(NodeContext.layer))

/** `docker <args>`: its standard output and error; a DockerError when it fails. */
export const exec = (args: ReadonlyArray<string>, options: Options = {}) =>
  Effect.flatMap(
    spawn(args, options),
    ({ code, stderr, stdout }) =>
      code === 0
        ? Effect.succeed({ stdout, stderr })
        : Effect.fail(new DockerError({ args, code, stderr: stderr.trim() }))
  )

/** `docker <args>`: its standard output, trimmed. */
export const run = (args: ReadonlyArray<string>, options: Options = {}) =>
  Effect.map(exec(args, options), ({ stdout }) => stdout.trim())

/** A container's `State`, as `docker inspect` reports it. */
export interface State {
  readonly Status: "created" | "running" | "paused" | "restarting" | "removing" | "exited" | "dead"
  readonly Pid: number
  readonly ExitCode: number
  readonly StartedAt: string
  readonly FinishedAt: string
  readonly Health?: { readonly Status: "starting" | "healthy" | "unhealthy" }
}

export const state = (container: string): Effect.Effect<State, DockerError> =>
  Effect.map(run(["inspect", "--format", "{{json .State}}", container]), (json) => JSON.parse(json) as State)

/** What the container wrote to its standard output and error. */
export const logs = (container: string): Effect.Effect<string, DockerError> =>
  Effect.map(exec(["logs", container]), ({ stderr, stdout }) => `${stdout}${stderr}`)

/** A container's JSON log lines' messages. */
export const logMessages = (output: string): ReadonlyArray<string> =>
  output.split("\n").flatMap((line) => {
    try {
      return [JSON.parse(line).message as string]
    } catch {
      return []
    }
  })

/** `docker run --detach --network host <args>`; the container is removed when the scope closes. */
export const runDetached = (args: ReadonlyArray<string>): Effect.Effect<string, DockerError, Scope.Scope> =>
  Effect.acquireRelease(
    run(["run", "--detach", "--network", "host", ...args]),
    (id) => Effect.ignore(run(["rm", "--force", "--volumes", id]))
  )

/** `docker run --rm --network host <args>` to its end: exit code and output. */
export const runToEnd = (args: ReadonlyArray<string>) =>
  Effect.map(
    spawn(["run", "--rm", "--network", "host", ...args], {}),
    ({ code, stderr, stdout }) => ({ code, output: `${stdout}${stderr}` })
  )

/**
 * Runs `effect` while `container` runs; fails with the container's output if it
 * stops first (or restarts: a crash under a restart policy).
 */
export const whileRunning = <A, E, R>(
  container: string,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E | Error | DockerError, R> =>
  Effect.raceFirst(
    effect,
    state(container).pipe(
      Effect.filterOrFail((s) => s.Status !== "running" && s.Status !== "created", () => "running" as const),
      Effect.retry({ schedule: Schedule.spaced("250 millis"), while: (e) => e === "running" }),
      Effect.catchIf((e) => e === "running", Effect.die),
      Effect.flatMap((s) =>
        Effect.flatMap(logs(container), (output) =>
          Effect.fail(new Error(`${container} ${s.Status} (exit code ${s.ExitCode}):\n${output}`)))
      )
    )
  )

/** The uid the container's main process runs as, read from the host's /proc. */
export const processUid = (container: string) =>
  Effect.map(
    state(container),
    (s) => Number(fs.readFileSync(`/proc/${s.Pid}/status`, "utf8").match(/^Uid:\s+(\d+)/m)?.[1])
  )

/** The container's main process's command line, read from the host's /proc. */
export const processArgv = (container: string) =>
  Effect.map(
    state(container),
    (s) => fs.readFileSync(`/proc/${s.Pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "")
  )

/**
 * Whether the container's root file system refuses writes: a file created in the
 * working directory (the only place a program might write) fails.
 */
export const rootIsReadOnly = (container: string) =>
  exec(["exec", container, "node", "-e", "require('fs').writeFileSync('written-at-run-time', '')"]).pipe(
    Effect.as({ readOnly: false, reason: "the write succeeded" }),
    Effect.catchTag(
      "DockerError",
      (error) => Effect.succeed({ readOnly: /EROFS|read-only file system/i.test(error.stderr), reason: error.stderr })
    )
  )

/** An image's size in bytes (all its layers, the base image's included). */
export const imageSize = (image: string) =>
  Effect.map(run(["image", "inspect", "--format", "{{.Size}}", image]), Number)

/** An image's configuration (`docker image inspect`: `.Config`). */
export interface ImageConfig {
  readonly User: string
  readonly Env: ReadonlyArray<string>
  readonly Entrypoint: ReadonlyArray<string> | null
  readonly Cmd: ReadonlyArray<string> | null
  readonly WorkingDir: string
}

export const imageConfig = (image: string): Effect.Effect<ImageConfig, DockerError> =>
  Effect.map(
    run(["image", "inspect", "--format", "{{json .Config}}", image]),
    (json) => JSON.parse(json) as ImageConfig
  )
