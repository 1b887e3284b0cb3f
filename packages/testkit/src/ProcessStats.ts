/**
 * What a running process has used, read from Linux's /proc: benchmarks print it
 * beside their rates. Undefined where there is no /proc, or no such process.
 */
import { readdirSync, readFileSync } from "node:fs"

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return undefined
  }
}

/** CPU time (user and system) process `pid` has used so far, in milliseconds. */
export const cpuMillis = (pid: number | string): number | undefined => {
  const fields = read(`/proc/${pid}/stat`)?.split(") ")[1]?.split(" ")
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return fields === undefined ? undefined : (Number(fields[11]) + Number(fields[12])) * 10
}

/**
 * Process `pid` and every process below it (read from each thread's `children` in
 * /proc): a node:cluster primary and its workers, say. Just `[pid]` when it has
 * none, and empty when there is no such process.
 */
export const tree = (pid: number): ReadonlyArray<number> => {
  let tasks: Array<string>
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return []
  }
  const children = tasks.flatMap((task) =>
    (read(`/proc/${pid}/task/${task}/children`) ?? "").split(" ").filter((id) => id !== "").map(Number)
  )
  return [pid, ...children.flatMap(tree)]
}

/** CPU time (user and system) process `pid` and the processes below it have used so far, in milliseconds. */
export const treeCpuMillis = (pid: number): number | undefined => {
  const [root, ...below] = tree(pid).map(cpuMillis)
  // A process below that ended meanwhile has no figure left; the root must have one.
  return root === undefined ? undefined : below.reduce<number>((total, ms) => total + (ms ?? 0), root)
}

/** The most memory process `pid` has held resident (VmHWM), in MiB. */
export const peakResidentMiB = (pid: number | string): number | undefined => {
  const kb = /VmHWM:\s+(\d+) kB/.exec(read(`/proc/${pid}/status`) ?? "")?.[1]
  return kb === undefined ? undefined : Math.round(Number(kb) / 1024)
}

/** The memory process `pid` holds resident now (VmRSS), in MiB. */
export const residentMiB = (pid: number | string): number | undefined => {
  const kb = /VmRSS:\s+(\d+) kB/.exec(read(`/proc/${pid}/status`) ?? "")?.[1]
  return kb === undefined ? undefined : Math.round(Number(kb) / 1024)
}

/**
 * CPU time (user and system) of this process's children that have exited and
 * been waited for (cutime and cstime), in milliseconds: what a finished command
 * such as a load generator cost.
 */
export const exitedChildrenCpuMillis = (): number | undefined => {
  const fields = read("/proc/self/stat")?.split(") ")[1]?.split(" ")
  return fields === undefined ? undefined : (Number(fields[13]) + Number(fields[14])) * 10
}
