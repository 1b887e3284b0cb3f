/**
 * The real kustomize renders the manifests for the tests: what `kubectl apply -k`
 * or `kustomize build` would send to a cluster. `scripts/kustomize.sh` installs
 * the pinned version in .tools/bin (CI does it first). Without it the manifest
 * suites are skipped locally with a warning, and fail in CI (CI=true).
 */
import * as Tools from "@movieapp/testkit/Tools"
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import * as YAML from "yaml"
import { repo } from "./Repo.js"

export const kubernetesDir = path.join(repo, "deploy/kubernetes")

/** `.tools/bin/kustomize` (scripts/kustomize.sh), else one on the PATH. */
const binary = () => Tools.binary("kustomize")

/** Whether the manifest suites can run: true with kustomize; false with a warning; an error in CI. */
export const available = (): boolean => {
  if (binary()) return true
  const message = "kustomize is not installed (bash scripts/kustomize.sh installs it in .tools/bin)"
  if (process.env.CI) throw new Error(`${message}; CI requires it`)
  console.warn(`${message}: skipping the Kubernetes manifest suites`)
  return false
}

/** A Kubernetes object as rendered. */
export interface K8sObject {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> }
  readonly [key: string]: any
}

/** `kustomize build <dir>` (relative to deploy/kubernetes), as objects. */
export const build = (dir: string): ReadonlyArray<K8sObject> => {
  const output = execFileSync(binary()!, ["build", path.join(kubernetesDir, dir)], {
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024
  })
  return YAML.parseAllDocuments(output).map((doc) => {
    if (doc.errors.length > 0) throw doc.errors[0]
    return doc.toJS() as K8sObject
  }).filter((o) => o !== null)
}
