import { Metadata, type MovieId } from "@movieapp/contracts/Metadata"
import { AggregatedRating } from "@movieapp/contracts/Rating"
import { Schema } from "effect"
import type { Position } from "./Listing.js"

/** What the gateway answers: a movie's metadata and its ratings aggregate. */
export class MovieDetails extends Schema.Class<MovieDetails>("MovieDetails")({
  metadata: Metadata,
  rating: AggregatedRating,
  /** The damped mean the ranking orders by; present in listings by rating. */
  dampedRating: Schema.optional(Schema.Number)
}) {}

/** A page of a listing, and where the next one starts (absent on the last page). */
export interface MoviePage {
  readonly movies: ReadonlyArray<MovieDetails>
  readonly next: Position | undefined
}

/** The answer to a batch: the details of every known id and the ids that are not, both in the order asked. */
export interface MovieBatch {
  readonly movies: ReadonlyArray<MovieDetails>
  readonly missing: ReadonlyArray<MovieId>
}
