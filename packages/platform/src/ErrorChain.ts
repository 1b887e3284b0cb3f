/** Errors from drivers and clients wrap their causes; people need the innermost reason. */

/** The innermost non-empty message of an error's `cause` chain ("connect ECONNREFUSED 127.0.0.1:9092"). */
export const rootReason = (error: unknown): string => {
  let reason = error instanceof Error ? error.message : String(error)
  let cause: unknown = error instanceof Error ? error.cause : undefined
  for (let depth = 0; depth < 8 && cause instanceof Error; depth++) {
    if (cause.message !== "") reason = cause.message
    cause = cause.cause
  }
  return reason
}
