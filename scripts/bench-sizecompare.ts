/**
 * Encode and decode speed of JSON, XML and protobuf on the sample metadata record:
 *
 *   npm run bench:sizecompare
 *
 * The figures compare formats within one run on one machine; nothing is asserted.
 */
import { NodeRuntime } from "@effect/platform-node"
import * as Benchmark from "@movieapp/sizecompare/Benchmark"

NodeRuntime.runMain(Benchmark.program)
