/**
 * Process figures from /proc, as the benchmarks read them: a process with one
 * below it (a node:cluster primary and its worker, say) is read as a tree.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { once } from "node:events"
import * as ProcessStats from "../src/ProcessStats.js"

describe("ProcessStats", () => {
  it("reads a process and the process it started as one tree", async () => {
    // The parent starts a child that burns some CPU, then prints the child's pid.
    const parent = spawn(process.execPath, [
      "-e",
      `const c = require("node:child_process").spawn(process.execPath, ["-e", "const t = Date.now(); while (Date.now() - t < 200); setInterval(() => {}, 1000)"], { stdio: "inherit" });
       console.log(c.pid); setInterval(() => {}, 1000)`
    ], { stdio: ["ignore", "pipe", "inherit"] })
    let child: number | undefined
    try {
      const [line] = await once(parent.stdout, "data") as [Buffer]
      child = Number(line.toString().trim())
      assert.deepStrictEqual(ProcessStats.tree(parent.pid!), [parent.pid!, child])
      assert.deepStrictEqual(ProcessStats.tree(child), [child])
      // The child's busy loop is counted once its CPU time shows in /proc.
      for (let tries = 0; (ProcessStats.cpuMillis(child) ?? 0) < 100; tries++) {
        assert.isBelow(tries, 500, "the child's CPU time never reached 100 ms")
        await new Promise((done) => setTimeout(done, 10))
      }
      const parts = ProcessStats.cpuMillis(parent.pid!)! + ProcessStats.cpuMillis(child)!
      assert.isAtLeast(ProcessStats.treeCpuMillis(parent.pid!)!, parts)
    } finally {
      if (child !== undefined) process.kill(child, "SIGKILL")
      parent.kill("SIGKILL")
    }
  })

  it("reads nothing of a process that is gone", () => {
    assert.deepStrictEqual(ProcessStats.tree(2 ** 22 + 1), [])
    assert.isUndefined(ProcessStats.treeCpuMillis(2 ** 22 + 1))
  })
})
