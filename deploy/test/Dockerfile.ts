/**
 * deploy/Dockerfile as the tests see it, without a Docker engine: parsed into
 * stages, the configuration of each target image (user, environment, the
 * command it runs), and a build that carries out the Dockerfile's own COPY and
 * RUN instructions in a directory per stage, so what the image would contain can
 * be started and probed.
 *
 * The build models exactly the instructions the Dockerfile uses and refuses any
 * other (or any flag it does not model), so a change to the Dockerfile cannot
 * silently escape the test. What it cannot model: the base image's own files
 * (the programs run on this machine's Node.js, whose major version the tests
 * compare with the base image's) and file ownership.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const repo = path.resolve(fileURLToPath(new URL("../..", import.meta.url)))
export const dockerfilePath = path.join(repo, "deploy/Dockerfile")
/** BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile before the context's own. */
export const dockerignorePath = `${dockerfilePath}.dockerignore`

export interface Instruction {
  readonly keyword: string
  readonly flags: Readonly<Record<string, string>>
  readonly args: string
  readonly line: number
}

export interface Stage {
  readonly name: string
  /** Another stage's name, or an external image reference. */
  readonly from: string
  readonly instructions: ReadonlyArray<Instruction>
}

export interface Dockerfile {
  readonly stages: ReadonlyArray<Stage>
}

const supported = new Set(["FROM", "WORKDIR", "ENV", "COPY", "RUN", "USER", "EXPOSE", "CMD", "ENTRYPOINT"])

/** Instructions of a Dockerfile, continuation lines joined, comments dropped. */
export const parse = (text: string): Dockerfile => {
  const instructions: Array<Instruction> = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const start = i
    let line = lines[i]!
    if (line.trim() === "" || line.trim().startsWith("#")) continue
    while (line.trimEnd().endsWith("\\") && i + 1 < lines.length) {
      line = line.trimEnd().slice(0, -1) + " " + lines[++i]!.trim()
    }
    const match = line.trim().match(/^(\S+)\s*(.*)$/)!
    const keyword = match[1]!.toUpperCase()
    if (!supported.has(keyword)) throw new Error(`Dockerfile line ${start + 1}: ${keyword} is not modelled by deploy/test/Dockerfile.ts`)
    let rest = match[2]!
    const flags: Record<string, string> = {}
    for (let flag = rest.match(/^--([a-z-]+)=(\S+)\s+/); flag; flag = rest.match(/^--([a-z-]+)=(\S+)\s+/)) {
      flags[flag[1]!] = flag[2]!
      rest = rest.slice(flag[0].length)
    }
    instructions.push({ keyword, flags, args: rest.trim(), line: start + 1 })
  }
  const stages: Array<{ name: string; from: string; instructions: Array<Instruction> }> = []
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") {
      const from = instruction.args.match(/^(\S+)(?:\s+AS\s+(\S+))?$/i)
      if (!from) throw new Error(`Dockerfile line ${instruction.line}: cannot read FROM ${instruction.args}`)
      stages.push({ name: from[2] ?? String(stages.length), from: from[1]!, instructions: [] })
    } else {
      const stage = stages.at(-1)
      if (!stage) throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} before FROM`)
      stage.instructions.push(instruction)
    }
  }
  return { stages }
}

export const read = (): Dockerfile => parse(fs.readFileSync(dockerfilePath, "utf8"))

export const stage = (file: Dockerfile, name: string): Stage | undefined => file.stages.find((s) => s.name === name)

/** A CMD or ENTRYPOINT: exec form (a JSON array) or shell form (run by /bin/sh -c). */
export interface Command {
  readonly form: "exec" | "shell"
  readonly argv: ReadonlyArray<string>
}

const command = (instruction: Instruction): Command => {
  if (instruction.args.startsWith("[")) {
    const argv = JSON.parse(instruction.args) as unknown
    if (!Array.isArray(argv) || !argv.every((a) => typeof a === "string")) {
      throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} is not a JSON array of strings`)
    }
    return { form: "exec", argv }
  }
  return { form: "shell", argv: ["/bin/sh", "-c", instruction.args] }
}

const envPairs = (instruction: Instruction): Array<[string, string]> => {
  const pairs: Array<[string, string]> = []
  const pattern = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g
  for (const match of instruction.args.matchAll(pattern)) {
    const raw = match[2]!
    pairs.push([match[1]!, raw.startsWith("\"") ? JSON.parse(raw) as string : raw])
  }
  if (pairs.length === 0) throw new Error(`Dockerfile line ${instruction.line}: ENV needs KEY=value`)
  return pairs
}

/** The configuration a target image is run with. */
export interface ImageConfig {
  /** The external image at the root of the target's chain. */
  readonly base: string
  readonly workdir: string
  readonly user: string | undefined
  readonly env: Readonly<Record<string, string>>
  /** Undefined when inherited from the base image, whose value this file does not show. */
  readonly entrypoint: Command | undefined
  readonly cmd: Command | undefined
  readonly expose: ReadonlyArray<number>
  /** The stages it is made of, root first. */
  readonly chain: ReadonlyArray<string>
}

export const imageConfig = (file: Dockerfile, target: string): ImageConfig => {
  const chain: Array<Stage> = []
  for (let s = stage(file, target); s; s = stage(file, s.from)) chain.unshift(s)
  if (chain.length === 0) throw new Error(`no stage ${target} in deploy/Dockerfile`)
  let workdir = "/"
  let user: string | undefined
  const env: Record<string, string> = {}
  let entrypoint: Command | undefined
  let cmd: Command | undefined
  const expose: Array<number> = []
  for (const s of chain) {
    let cmdSetHere = false
    for (const instruction of s.instructions) {
      switch (instruction.keyword) {
        case "WORKDIR":
          workdir = path.posix.resolve(workdir, instruction.args)
          break
        case "USER":
          user = instruction.args
          break
        case "ENV":
          for (const [k, v] of envPairs(instruction)) env[k] = v
          break
        case "EXPOSE":
          expose.push(...instruction.args.split(/\s+/).map((p) => Number(p.replace(/\/tcp$/, ""))))
          break
        case "CMD":
          cmd = command(instruction)
          cmdSetHere = true
          break
        case "ENTRYPOINT":
          entrypoint = command(instruction)
          // Docker: an ENTRYPOINT resets the CMD inherited from the parent image.
          if (!cmdSetHere) cmd = { form: "exec", argv: [] }
          break
      }
    }
  }
  return { base: chain[0]!.from, workdir, user, env, entrypoint, cmd, expose, chain: chain.map((s) => s.name) }
}

/** What the container runs: ENTRYPOINT followed by CMD, as Docker composes them. */
export const containerArgv = (config: ImageConfig): ReadonlyArray<string> => {
  if (config.entrypoint === undefined) {
    throw new Error(`the ENTRYPOINT of ${config.chain.at(-1)} comes from ${config.base}, which this file does not show: declare it`)
  }
  return [...config.entrypoint.argv, ...(config.cmd?.argv ?? [])]
}

// --- .dockerignore -------------------------------------------------------------------------

/** A .dockerignore pattern as a regular expression over context-relative paths (moby patternmatcher). */
const ignorePattern = (pattern: string): RegExp => {
  const clean = path.posix.normalize(pattern.replace(/^\/+/, "")).replace(/\/+$/, "")
  let source = ""
  for (let i = 0; i < clean.length; i++) {
    const c = clean[i]!
    if (c === "*" && clean[i + 1] === "*") {
      i++
      if (clean[i + 1] === "/") {
        i++
        source += "(?:.*/)?"
      } else {
        source += ".*"
      }
    } else if (c === "*") source += "[^/]*"
    else if (c === "?") source += "[^/]"
    else source += c.replace(/[.+^${}()|[\]\\]/g, "\\$&")
  }
  return new RegExp(`^${source}$`)
}

/** Whether a context-relative path is left out of the build context (itself or a parent directory). */
export type Ignore = (relative: string) => boolean

export const readIgnore = (file: string = dockerignorePath): Ignore => {
  const patterns = fs.readFileSync(file, "utf8").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"))
  if (patterns.some((p) => p.startsWith("!"))) throw new Error("exceptions (!) in .dockerignore are not modelled by deploy/test/Dockerfile.ts")
  const expressions = patterns.map(ignorePattern)
  return (relative) => {
    const parts = relative.split("/")
    return parts.some((_, i) => expressions.some((e) => e.test(parts.slice(0, i + 1).join("/"))))
  }
}

// --- build ---------------------------------------------------------------------------------

/** Environment a RUN step gets from this machine: tools and the npm cache, nothing of the test run. */
const hostEnv = (): Record<string, string> =>
  Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] =>
      e[1] !== undefined && /^(PATH|HOME|TMPDIR|LANG|(HTTPS?|NO)_PROXY|(https?|no)_proxy|NODE_EXTRA_CA_CERTS|SSL_CERT_(FILE|DIR))$/.test(e[0]))
  )

const run = (argv: ReadonlyArray<string>, options: { cwd: string; env: Record<string, string> }) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (d) => (output += d))
    child.stderr.on("data", (d) => (output += d))
    child.on("error", reject)
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`${argv.join(" ")} exited ${code}:\n${output.slice(-4000)}`)))
  })

// Asynchronous throughout: a build copies hundreds of megabytes, and the test runner's worker must stay responsive.
const copyInto = async (source: string, destination: string, destinationIsDirectory: boolean, filter: (source: string) => boolean) => {
  const stat = await fs.promises.lstat(source)
  if (stat.isDirectory()) {
    // A directory source copies its contents.
    await fs.promises.mkdir(destination, { recursive: true })
    for (const entry of await fs.promises.readdir(source)) {
      const from = path.join(source, entry)
      if (filter(from)) await fs.promises.cp(from, path.join(destination, entry), { recursive: true, verbatimSymlinks: true, filter })
    }
  } else {
    const to = destinationIsDirectory ? path.join(destination, path.basename(source)) : destination
    await fs.promises.mkdir(path.dirname(to), { recursive: true })
    await fs.promises.cp(source, to, { verbatimSymlinks: true })
  }
}

export interface Built {
  /** The target's file system: container path `/x` is `<root>/x`. */
  readonly root: string
  readonly config: ImageConfig
}

/**
 * Builds `target` from `context` (this repository) under `workspace`, running
 * each needed stage once, in Dockerfile order. Returns the target's files.
 */
export const build = async (options: {
  readonly file: Dockerfile
  readonly target: string
  readonly workspace: string
  readonly context?: string
  readonly ignore?: Ignore
  /** Stages already built by an earlier call with the same workspace. */
  readonly cache?: Map<string, Promise<string>>
}): Promise<Built> => {
  const context = options.context ?? repo
  const ignore = options.ignore ?? readIgnore()
  const cache = options.cache ?? new Map<string, Promise<string>>()

  const buildStage = (name: string): Promise<string> => {
    const cached = cache.get(name)
    if (cached) return cached
    const promise = (async () => {
      const s = stage(options.file, name)!
      const parent = stage(options.file, s.from)
      const modifies = s.instructions.some((i) => ["COPY", "RUN", "WORKDIR"].includes(i.keyword))
      const parentRoot = parent ? await buildStage(parent.name) : undefined
      // A stage that changes no file shares its parent's.
      if (parentRoot !== undefined && !modifies) return parentRoot
      const root = path.join(options.workspace, name)
      await fs.promises.rm(root, { recursive: true, force: true })
      if (parentRoot !== undefined) await fs.promises.cp(parentRoot, root, { recursive: true, verbatimSymlinks: true })
      else await fs.promises.mkdir(root, { recursive: true })
      let workdir = parent ? imageConfig(options.file, parent.name).workdir : "/"
      const env: Record<string, string> = { ...(parent ? imageConfig(options.file, parent.name).env : {}) }
      const inRoot = (containerPath: string) => path.join(root, path.posix.resolve(workdir, containerPath))
      for (const instruction of s.instructions) {
        const where = `Dockerfile line ${instruction.line}`
        switch (instruction.keyword) {
          case "WORKDIR":
            workdir = path.posix.resolve(workdir, instruction.args)
            await fs.promises.mkdir(path.join(root, workdir), { recursive: true })
            break
          case "ENV":
            for (const [k, v] of envPairs(instruction)) env[k] = v
            break
          case "RUN": {
            for (const [flag, value] of Object.entries(instruction.flags)) {
              // A cache mount only speeds up a build; any other flag would change what it does.
              if (flag !== "mount" || !value.startsWith("type=cache,")) throw new Error(`${where}: RUN --${flag}=${value} is not modelled`)
            }
            const { argv } = command(instruction)
            await run(argv, { cwd: path.join(root, workdir), env: { ...hostEnv(), ...env } })
            break
          }
          case "COPY": {
            const unmodelled = Object.keys(instruction.flags).filter((f) => f !== "from")
            if (unmodelled.length > 0) throw new Error(`${where}: COPY --${unmodelled[0]} is not modelled`)
            const parts = instruction.args.startsWith("[") ? JSON.parse(instruction.args) as Array<string> : instruction.args.split(/\s+/)
            const destination = parts.pop()!
            if (parts.some((p) => /[*?[]/.test(p))) throw new Error(`${where}: wildcards in COPY are not modelled`)
            const toDirectory = parts.length > 1 || destination.endsWith("/")
            const from = instruction.flags.from
            for (const source of parts) {
              if (from !== undefined) {
                if (!stage(options.file, from)) throw new Error(`${where}: COPY --from=${from}: no such stage`)
                const fromRoot = await buildStage(from)
                const absolute = path.join(fromRoot, path.posix.resolve("/", source))
                if (!fs.existsSync(absolute)) throw new Error(`${where}: ${source} does not exist in stage ${from}`)
                await copyInto(absolute, inRoot(destination), toDirectory, () => true)
              } else {
                const relative = path.posix.normalize(source).replace(/\/+$/, "")
                const absolute = path.join(context, relative)
                if (ignore(relative) || !fs.existsSync(absolute)) throw new Error(`${where}: ${source} is not in the build context`)
                await copyInto(absolute, inRoot(destination), toDirectory, (file) => !ignore(path.relative(context, file).split(path.sep).join("/")))
              }
            }
            break
          }
        }
      }
      return root
    })()
    cache.set(name, promise)
    return promise
  }

  return { root: await buildStage(options.target), config: imageConfig(options.file, options.target) }
}
