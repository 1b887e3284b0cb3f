import * as RatingRepositoryMemory from "../src/adapters/RatingRepositoryMemory.js"
import { ratingRepositoryContract } from "./RatingRepositoryContract.js"

ratingRepositoryContract("memory", RatingRepositoryMemory.layer)
