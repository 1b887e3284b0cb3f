import { Metadata } from "@movieapp/contracts/Metadata"
import { AggregatedRating } from "@movieapp/contracts/Rating"
import { Schema } from "effect"

/** What the gateway answers: a movie's metadata and its ratings aggregate. */
export class MovieDetails extends Schema.Class<MovieDetails>("MovieDetails")({
  metadata: Metadata,
  rating: AggregatedRating
}) {}
