/**
 * `npm run bench:gateway -- --gateway-workers N`: the gateway as N processes
 * sharing its ports through node:cluster, to measure whether workers pay on a
 * machine (docs/benchmarks.md, "Every core"). The services have no worker setting
 * of their own; this primary only forks them and the kernel spreads connections
 * over them (SCHED_NONE: no round-robin through the primary). It exits once the
 * last worker has.
 *
 *   node bench-gateway-workers.mjs <workers> <gateway entry point>
 */
import cluster from "node:cluster"

const [workers, entry] = process.argv.slice(2)
if (!(Number(workers) >= 1) || entry === undefined) {
  console.error("usage: bench-gateway-workers.mjs <workers> <gateway entry point>")
  process.exit(2)
}
cluster.schedulingPolicy = cluster.SCHED_NONE
cluster.setupPrimary({ exec: entry, execArgv: [] })
for (let i = 0; i < Number(workers); i++) cluster.fork()
process.on("SIGTERM", () => {
  for (const worker of Object.values(cluster.workers ?? {})) worker?.kill("SIGTERM")
})
cluster.on("exit", () => {
  if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0)
})
