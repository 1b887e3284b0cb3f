/**
 * Bundles the programs the images run into `dist/app`, a tree laid out as the
 * repository is (`dist/app/packages/movie/dist/main.js`, ...) that holds all they
 * need at run time besides Node.js: deploy/Dockerfile copies it to /app as it is,
 * and `npm run bench:gateway` runs the services from it. From the compiled
 * JavaScript (`npm run build` first; `npm run bundle` does both).
 *
 * Why: Node.js evaluates every module an ESM import reaches, whole packages
 * behind their index files included; a bundle keeps only the code that can run
 * (esbuild's tree shaking) and loads the rest when a configuration asks for it.
 * Measured (docs/benchmarks.md, "Memory and start-up"): start-up falls by about
 * half, idle memory by 30 % (Node.js 20) to 45 % (Node.js 24).
 *
 * - One bundle per program, split at the composition roots' dynamic imports: an
 *   adapter a configuration does not choose (MySQL, Kafka, Consul, the
 *   OpenTelemetry SDK...) stays in a file of its own that is never read. A
 *   program's files sit beside its entry point.
 * - Whitespace and comments are removed (a single non-ASCII character in a kept
 *   comment makes V8 hold the whole source as UTF-16, twice the memory), and
 *   syntax simplified; names are kept, so stack traces still name functions.
 *   License comments go to `<file>.LEGAL.txt` beside each file.
 * - Packages are taken in their ES module build where they publish one
 *   (`module`): the OpenTelemetry packages' CommonJS indexes load everything
 *   they hold, the ES builds only what is imported.
 * - A module that finds files relative to itself (`__dirname`, `import.meta.url`:
 *   the gRPC health and reflection services' .proto files, the SQL migrations)
 *   still finds them where they were: its location is written into the bundle
 *   relative to the program's file, and those files are copied into the tree
 *   (ASSETS).
 *
 *   npm run bundle [-- --out DIR] [-- --metafile DIR]
 *
 * `--metafile DIR` writes esbuild's metafile of each program there, for
 * https://esbuild.github.io/analyze/ or `esbuild --analyze`.
 */
import * as esbuild from "esbuild"
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const repo = resolve(fileURLToPath(new URL("..", import.meta.url)))
const args = process.argv.slice(2)
const option = (name: string): string | undefined => {
  const index = args.indexOf(`--${name}`)
  return index === -1 ? undefined : args[index + 1]
}
const out = resolve(repo, option("out") ?? "dist/app")
const metafiles = option("metafile")

/** The programs, as the images run them: the three services, the ingestor and the containers' health probe. */
const PROGRAMS = [
  "packages/metadata/dist/main.js",
  "packages/rating/dist/main.js",
  "packages/movie/dist/main.js",
  "packages/ratingingestor/dist/main.js",
  "packages/platform/dist/GrpcHealthProbe.js"
] as const

/**
 * Files the programs read at run time, at their places in the repository. A new
 * one shows as a program failing to start from the bundle (the image and Compose
 * suites and `npm run bench:gateway` run them).
 */
const ASSETS = [
  // GrpcHealth finds grpc-health-check's service definition from its package.json.
  "node_modules/grpc-health-check/package.json",
  "node_modules/grpc-health-check/proto/health/v1/health.proto",
  // @grpc/reflection loads these when the reflection service is added to a server.
  "node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto",
  "node_modules/@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto",
  // The services' versions, shown at `GET /` (ServerHost.packageVersion).
  "packages/metadata/package.json",
  "packages/rating/package.json",
  "packages/movie/package.json",
  // The repositories' migrations (MetadataRepositoryMysql, RatingRepositoryMysql).
  "schema"
] as const

/**
 * Each module that asks where it is (`__dirname`, `__filename`,
 * `import.meta.url`) gets its own location, relative to the program's file
 * (`located` in the banner resolves it at run time): in one bundle they would
 * all get the bundle's.
 */
const located = (programDir: string): esbuild.Plugin => ({
  name: "located",
  setup(build) {
    build.onLoad({ filter: /\.(c?js|mjs)$/ }, (args) => {
      const text = readFileSync(args.path, "utf8")
      if (!/\b__dirname\b|\b__filename\b|\bimport\.meta\.url\b/.test(text)) return undefined
      const file = JSON.stringify(relative(programDir, args.path))
      return {
        contents: text
          .replace(/\bimport\.meta\.url\b/g, `__located.url(${file})`)
          .replace(/\b__dirname\b/g, `__located.dir(${file})`)
          .replace(/\b__filename\b/g, `__located.file(${file})`),
        loader: "js",
        resolveDir: dirname(args.path)
      }
    })
  }
})

/** At the top of every file: `require` for the CommonJS packages inside, and `located`. */
const banner = [
  `import { createRequire as __createRequire } from "node:module";`,
  `import { dirname as __dirnameOf, resolve as __resolvePath } from "node:path";`,
  `import { fileURLToPath as __fileURLToPath, pathToFileURL as __pathToFileURL } from "node:url";`,
  `const require = __createRequire(import.meta.url);`,
  `const __located = ((here) => ({ file: (p) => __resolvePath(here, p), dir: (p) => __dirnameOf(__resolvePath(here, p)), url: (p) => __pathToFileURL(__resolvePath(here, p)).href }))(__dirnameOf(__fileURLToPath(import.meta.url)));`
].join("\n")

/** Bytes of the files a program reads when it starts (its entry point and the chunks it imports statically), and of all its files. */
const sizes = (metafile: esbuild.Metafile, entry: string) => {
  const outputs = metafile.outputs
  const started = new Set<string>()
  const next = [entry]
  while (next.length > 0) {
    const file = next.pop()!
    if (started.has(file)) continue
    started.add(file)
    for (const imported of outputs[file]!.imports) {
      if (imported.kind === "import-statement" && imported.path in outputs) next.push(imported.path)
    }
  }
  const bytes = (files: Iterable<string>) => [...files].reduce((total, file) => total + outputs[file]!.bytes, 0)
  const code = Object.keys(outputs).filter((file) => file.endsWith(".js"))
  return { atStart: bytes(started), files: started.size, all: bytes(code), allFiles: code.length }
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`

const main = async () => {
  rmSync(out, { recursive: true, force: true })
  for (const program of PROGRAMS) {
    const programDir = dirname(join(repo, program))
    const outdir = dirname(join(out, program))
    const result = await esbuild.build({
      absWorkingDir: repo,
      entryPoints: [join(repo, program)],
      outdir,
      entryNames: "[name]",
      chunkNames: "[name]-[hash]",
      bundle: true,
      splitting: true,
      platform: "node",
      format: "esm",
      target: "node20",
      mainFields: ["module", "main"],
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: "external",
      banner: { js: banner },
      plugins: [located(programDir)],
      metafile: true,
      logLevel: "warning"
    })
    const entry = relative(repo, join(out, program))
    const size = sizes(result.metafile, entry)
    console.log(
      `${entry}: ${mb(size.atStart)} read at start (${size.files} files), ${
        mb(size.all)
      } in all (${size.allFiles} files)`
    )
    if (metafiles !== undefined) {
      const file = join(resolve(repo, metafiles), `${program.replace(/\//g, "_")}.json`)
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, JSON.stringify(result.metafile))
    }
  }
  for (const asset of ASSETS) {
    mkdirSync(dirname(join(out, asset)), { recursive: true })
    cpSync(join(repo, asset), join(out, asset), { recursive: true })
  }
  // The bundles are ES modules, as the repository's packages are.
  writeFileSync(join(out, "package.json"), `${JSON.stringify({ private: true, type: "module" }, null, 2)}\n`)
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
