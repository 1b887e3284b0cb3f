/** Entry point of the `sizecompare` command line tool. */
import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import * as Cli from "@movieapp/platform/Cli"
import { Effect } from "effect"
import * as Command from "./Cli.js"

// A user mistake deserves one plain line, not a logged stack trace; @effect/cli has already
// printed its own validation errors; anything else is a bug and is shown in full.
Command.run(process.argv).pipe(
  Effect.tapErrorCause((cause) => Cli.report(cause, ValidationError.isValidationError)),
  Effect.provide(NodeContext.layer),
  Effect.provide(Cli.layer("sizecompare")),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
