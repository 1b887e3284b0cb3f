/**
 * Map keys naming a record or one user's rating of it, for storage and batch
 * bookkeeping. An id may hold any character, so no character can separate ids
 * in a key: each part is written after its length instead, which makes keys of
 * distinct records (or ratings) distinct strings.
 */
const part = (value: string) => `${value.length}:${value}`

/** The key of `key`'s record. */
export const record = (key: { readonly recordType: string; readonly recordId: string }): string =>
  part(key.recordType) + part(key.recordId)

/** The key of the user's rating of the record. */
export const rating = (
  key: { readonly recordType: string; readonly recordId: string; readonly userId: string }
): string => record(key) + part(key.userId)
