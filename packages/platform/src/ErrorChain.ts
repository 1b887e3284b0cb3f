/** Errors from drivers and clients wrap their causes; people need the innermost reason. */

/** How far a chain is followed: far enough for any driver, short enough for a cycle. */
const MAX_DEPTH = 8

/** `error`, then its `cause`, that one's `cause`, and so on, while each is an object. */
export const links = function*(error: unknown): Generator<object> {
  let current = error
  for (let depth = 0; depth < MAX_DEPTH && typeof current === "object" && current !== null; depth++) {
    yield current
    current = (current as { readonly cause?: unknown }).cause
  }
}

/** The first link of `error`'s chain that `predicate` accepts. */
export const find = <A extends object>(error: unknown, predicate: (link: object) => link is A): A | undefined => {
  for (const link of links(error)) {
    if (predicate(link)) return link
  }
  return undefined
}

/** The innermost non-empty message of an error's `cause` chain ("connect ECONNREFUSED 127.0.0.1:9092"). */
export const rootReason = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error)
  let reason = error.message
  for (const link of Array.from(links(error)).slice(1)) {
    if (!(link instanceof Error)) break
    if (link.message !== "") reason = link.message
  }
  return reason
}
