/** Decoding untrusted input into domain values, failing with the field and the reason. */
import { InvalidArgument } from "@movieapp/contracts/Errors"
import { Effect, Schema } from "effect"

/** Decodes `input` with `schema`; unknown fields are ignored, the first problem is reported. */
export const decode = <A, I>(schema: Schema.Schema<A, I>) => (input: unknown): Effect.Effect<A, InvalidArgument> =>
  Schema.decodeUnknown(schema, { onExcessProperty: "ignore" })(input).pipe(
    Effect.mapError(InvalidArgument.fromParseError)
  )
