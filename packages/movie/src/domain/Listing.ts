/**
 * Listing the catalogue: what a ListMovies request asks for, checked, and the
 * page token that carries a listing's position from one page to the next.
 *
 * A page token is the position after the last movie of a page: its title and id
 * (by title) or its damped score and id (by rating), so a listing resumes where
 * it stopped however the catalogue changed (keyset paging; nothing is held on
 * the server between pages). Tokens are opaque to callers and integrity-checked:
 * a token that was cut, edited or issued for another ordering is refused as
 * INVALID_ARGUMENT. They are not secret and grant nothing: a forged one only
 * names another position.
 */
import { InvalidArgument } from "@movieapp/contracts/Errors"
import { MAX_BATCH_SIZE } from "@movieapp/contracts/Fields"
import { Metadata, MovieId, type TitleCursor } from "@movieapp/contracts/Metadata"
import { type RankCursor, RecordId } from "@movieapp/contracts/Rating"
import { Effect, Either, Schema } from "effect"
import { createHash } from "node:crypto"

const DEFAULT_PAGE_SIZE = 20
// A page by title asks the rating backend for all its movies in one batch.
const MAX_PAGE_SIZE = MAX_BATCH_SIZE

/** What to list: a page size, an order and where the previous page ended. */
export type ListQuery =
  | { readonly _tag: "ByTitle"; readonly pageSize: number; readonly after: TitleCursor | undefined }
  | {
    readonly _tag: "ByRating"
    readonly pageSize: number
    /** Only movies with at least this many ratings. */
    readonly minCount: number
    readonly after: RankCursor | undefined
  }

/** Where a page ended, to be passed back as a page token; absent on the last page. */
export type Position =
  | { readonly _tag: "ByTitle"; readonly after: TitleCursor }
  | { readonly _tag: "ByRating"; readonly minCount: number; readonly after: RankCursor }

// Compact on the wire: [order, ...position].
const TokenPayload = Schema.Union(
  Schema.Tuple(Schema.Literal("t"), Metadata.fields.title, MovieId),
  Schema.Tuple(
    Schema.Literal("r"),
    Schema.Number.pipe(Schema.int(), Schema.positive()),
    Schema.Number.pipe(Schema.finite()),
    RecordId
  )
)
const decodePayload = Schema.decodeUnknownEither(Schema.parseJson(TokenPayload))

const checksum = (payload: string) =>
  createHash("sha256").update("movieapp.v1.ListMovies\0").update(payload).digest("base64url").slice(0, 16)

/** The page token that resumes a listing after `position`. */
export const encodeToken = (position: Position): string => {
  const payload = JSON.stringify(
    position._tag === "ByTitle"
      ? ["t", position.after.title, position.after.id]
      : ["r", position.minCount, position.after.score, position.after.recordId]
  )
  return `${Buffer.from(payload, "utf8").toString("base64url")}.${checksum(payload)}`
}

const decodeToken = (token: string, nextPageToken: string): Either.Either<Position, string> => {
  const notIssued = `is not a page token this service issued (pass ${nextPageToken} back unchanged)`
  const [encoded, sum, ...rest] = token.split(".")
  if (encoded === undefined || sum === undefined || rest.length > 0) return Either.left(notIssued)
  const payload = Buffer.from(encoded, "base64url").toString("utf8")
  if (checksum(payload) !== sum) return Either.left(notIssued)
  return Either.match(decodePayload(payload), {
    onLeft: () => Either.left(notIssued),
    onRight: (decoded): Either.Either<Position, string> =>
      decoded[0] === "t"
        ? Either.right({ _tag: "ByTitle", after: { title: decoded[1], id: decoded[2] } })
        : Either.right({ _tag: "ByRating", minCount: decoded[1], after: { score: decoded[2], recordId: decoded[3] } })
  })
}

/** A ListMovies request as it arrived, numbers unchecked; the field names of its wire to report problems with. */
export interface ListRequest {
  readonly pageSize: number | undefined
  readonly pageToken: string | undefined
  readonly orderBy: string | undefined
  readonly minRatingsCount: number | undefined
}
/** The names of a request's fields on its wire, and of the response's next page token. */
export type FieldNames = { readonly [K in keyof ListRequest | "nextPageToken"]: string }

const isCount = (n: number) => Number.isSafeInteger(n) && n >= 0

/**
 * The query a request asks for: page size 1 to {@link MAX_PAGE_SIZE} (0 or none:
 * {@link DEFAULT_PAGE_SIZE}), order `title` (the default) or `rating`, a
 * minimum count of ratings (by rating only; 0 or none: 1), and the position of
 * its page token, which must have been issued for the same order and minimum.
 */
export const parse = (request: ListRequest, fields: FieldNames): Effect.Effect<ListQuery, InvalidArgument> => {
  const invalid = (field: string, reason: string) => Effect.fail(new InvalidArgument({ field, reason }))
  const pageSize = request.pageSize ?? 0
  if (!isCount(pageSize) || pageSize > MAX_PAGE_SIZE) {
    return invalid(fields.pageSize, `must be an integer from 1 to ${MAX_PAGE_SIZE} (0 or unset: ${DEFAULT_PAGE_SIZE})`)
  }
  const size = pageSize === 0 ? DEFAULT_PAGE_SIZE : pageSize
  const orderBy = request.orderBy ?? ""
  if (orderBy !== "" && orderBy !== "title" && orderBy !== "rating") {
    return invalid(fields.orderBy, `must be "title" or "rating"`)
  }
  const minRatingsCount = request.minRatingsCount ?? 0
  if (!isCount(minRatingsCount)) return invalid(fields.minRatingsCount, "must be a non-negative integer")
  if (orderBy !== "rating" && minRatingsCount !== 0) {
    return invalid(fields.minRatingsCount, `applies only to ${fields.orderBy} "rating"`)
  }
  const minCount = Math.max(1, minRatingsCount)
  let position: Position | undefined
  if (request.pageToken !== undefined && request.pageToken !== "") {
    const decoded = decodeToken(request.pageToken, fields.nextPageToken)
    if (Either.isLeft(decoded)) return invalid(fields.pageToken, decoded.left)
    position = decoded.right
    const sameQuery = orderBy === "rating"
      ? position._tag === "ByRating" && position.minCount === minCount
      : position._tag === "ByTitle"
    if (!sameQuery) {
      return invalid(
        fields.pageToken,
        `was issued for another ${fields.orderBy} or ${fields.minRatingsCount}: send the same ones as for the first page`
      )
    }
  }
  return Effect.succeed(
    orderBy === "rating"
      ? {
        _tag: "ByRating",
        pageSize: size,
        minCount,
        after: position?._tag === "ByRating" ? position.after : undefined
      }
      : { _tag: "ByTitle", pageSize: size, after: position?._tag === "ByTitle" ? position.after : undefined }
  )
}
