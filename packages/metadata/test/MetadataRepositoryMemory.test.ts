import * as MetadataRepositoryMemory from "../src/adapters/MetadataRepositoryMemory.js"
import { metadataRepositoryContract } from "./MetadataRepositoryContract.js"

metadataRepositoryContract("memory", MetadataRepositoryMemory.layer)
