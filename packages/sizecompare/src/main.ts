/** Entry point of the `sizecompare` command line tool. */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Option } from "effect"
import * as Cli from "./Cli.js"

// A user mistake deserves one plain line, not a logged stack trace; @effect/cli has already
// printed its own validation errors; anything else is a bug and is shown in full.
const report = (cause: Cause.Cause<Effect.Effect.Error<ReturnType<typeof Cli.run>>>) =>
  Cause.isInterruptedOnly(cause) ? Effect.void : Option.match(Cause.failureOption(cause), {
    onNone: () => Console.error(Cause.pretty(cause)),
    onSome: (error) => error._tag === "RecordFileError" ? Console.error(error.message) : Effect.void
  })

Cli.run(process.argv).pipe(
  Effect.tapErrorCause(report),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
