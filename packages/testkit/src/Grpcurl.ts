/**
 * The real grpcurl, calling a server as an operator would (`-cacert`, `-cert`,
 * `-key`). `scripts/grpcurl.sh` installs the pinned version in .tools/bin (CI
 * does it first). Without it the suites that use it are skipped locally with a
 * warning, and fail in CI (CI=true).
 */
import * as Command from "./Command.js"
import * as RequiredServer from "./RequiredServer.js"
import * as Tools from "./Tools.js"

const binary = () => Tools.binary("grpcurl")

/** Whether the suites calling grpcurl can run: true with it; false with a warning; an error in CI. */
export const available = (): boolean =>
  RequiredServer.required({
    name: "grpcurl",
    problem: binary() === undefined ? "is not installed" : undefined,
    start: "bash scripts/grpcurl.sh, which installs it in .tools/bin"
  })

/** Runs grpcurl with `args`: its exit code, what it printed, and its error output. */
export const run = (args: ReadonlyArray<string>) => Command.run([binary() ?? "grpcurl", ...args])
