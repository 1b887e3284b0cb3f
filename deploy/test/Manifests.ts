/**
 * Reading rendered Kubernetes manifests: the overlays, their workloads, and the
 * environment a container would get, resolved the way the kubelet does.
 */
import * as Kustomize from "./Kustomize.js"
import type { K8sObject } from "./Kustomize.js"

export const overlays = ["local", "production"] as const
export type Overlay = (typeof overlays)[number]

export interface Rendered {
  /** `overlays/<name>`: the services. */
  readonly services: ReadonlyArray<K8sObject>
  /** `overlays/<name>/ingest`: the ingestor Job. */
  readonly ingest: ReadonlyArray<K8sObject>
}

export const render = (overlay: Overlay): Rendered => ({
  services: Kustomize.build(`overlays/${overlay}`),
  ingest: Kustomize.build(`overlays/${overlay}/ingest`)
})

/** Pod-making objects, with the pod template they make pods from. */
export interface Workload {
  readonly object: K8sObject
  readonly pod: any
  readonly podLabels: Readonly<Record<string, string>>
}

export const workloads = (objects: ReadonlyArray<K8sObject>): ReadonlyArray<Workload> =>
  objects
    .filter((o) => ["Deployment", "StatefulSet", "DaemonSet", "Job"].includes(o.kind))
    .map((object) => ({
      object,
      pod: object.spec.template.spec,
      podLabels: object.spec.template.metadata?.labels ?? {}
    }))

export const matches = (selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v)

/** `[registry/]movieapp/<target>[:tag]`: an image built from deploy/Dockerfile. */
export const movieappImage = (
  image: string
): { readonly target: string; readonly tag: string | undefined } | undefined => {
  const match = image.match(/(?:^|\/)movieapp\/([a-z0-9-]+)(?::([\w.-]+))?$/)
  return match ? { target: match[1]!, tag: match[2] } : undefined
}

/** Values standing in for what only a running pod knows. */
export const fieldPlaceholders: Readonly<Record<string, string>> = {
  "status.podIP": "192.0.2.3",
  "metadata.name": "pod-0",
  "metadata.namespace": "movieapp"
}

export interface ResolvedEnv {
  readonly env: Readonly<Record<string, string>>
  /** Where each key came from: `literal`, `field`, `ConfigMap/<name>`, `Secret/<name>`. */
  readonly source: Readonly<Record<string, string>>
  /**
   * Referenced objects that are not among the rendered ones: the operator creates
   * them, or may (`optional`: the container starts without them).
   */
  readonly external: ReadonlyArray<
    { readonly kind: "ConfigMap" | "Secret"; readonly name: string; readonly key?: string; readonly optional?: true }
  >
  /** References that cannot be satisfied (a missing key of a rendered object). */
  readonly problems: ReadonlyArray<string>
}

const decode = (object: K8sObject, key: string): string | undefined =>
  object.kind === "Secret"
    ? object.stringData?.[key] ??
      (object.data?.[key] === undefined ? undefined : Buffer.from(object.data[key], "base64").toString("utf8"))
    : object.data?.[key]

/**
 * The environment of `container`, as the kubelet builds it (envFrom first, then
 * env). A required object that is not rendered gets a placeholder value (the
 * operator creates it); an optional one that is missing, or its missing key,
 * leaves the variable unset, as in a pod.
 */
export const resolveEnv = (container: any, objects: ReadonlyArray<K8sObject>): ResolvedEnv => {
  const env: Record<string, string> = {}
  const source: Record<string, string> = {}
  const external: Array<ResolvedEnv["external"][number]> = []
  const problems: Array<string> = []
  const find = (kind: "ConfigMap" | "Secret", name: string) =>
    objects.find((o) => o.kind === kind && o.metadata.name === name)
  for (const from of container.envFrom ?? []) {
    const kind = from.configMapRef ? "ConfigMap" : "Secret"
    const name = (from.configMapRef ?? from.secretRef).name
    const object = find(kind, name)
    if (!object) {
      external.push({ kind, name })
      continue
    }
    for (const key of Object.keys({ ...object.data, ...object.stringData })) {
      env[`${from.prefix ?? ""}${key}`] = decode(object, key)!
      source[`${from.prefix ?? ""}${key}`] = `${kind}/${name}`
    }
  }
  for (const entry of container.env ?? []) {
    const ref = entry.valueFrom?.configMapKeyRef ?? entry.valueFrom?.secretKeyRef
    if (entry.value !== undefined) {
      env[entry.name] = entry.value
      source[entry.name] = "literal"
    } else if (entry.valueFrom?.fieldRef) {
      env[entry.name] = fieldPlaceholders[entry.valueFrom.fieldRef.fieldPath] ?? "placeholder"
      source[entry.name] = "field"
    } else if (ref) {
      const kind = entry.valueFrom.configMapKeyRef ? "ConfigMap" : "Secret"
      const object = find(kind, ref.name)
      const optional = ref.optional === true
      if (!object) {
        external.push({ kind, name: ref.name, key: ref.key, ...(optional ? { optional } : {}) })
        if (optional) continue
        env[entry.name] = `${ref.name}/${ref.key}`
      } else if (decode(object, ref.key) === undefined) {
        if (optional) continue
        problems.push(`${entry.name}: ${kind} ${ref.name} has no key ${ref.key}`)
      } else {
        env[entry.name] = decode(object, ref.key)!
      }
      source[entry.name] = `${kind}/${ref.name}`
    } else {
      problems.push(`${entry.name}: no value`)
    }
  }
  return { env, source, external, problems }
}

/** ConfigMaps and Secrets a pod mounts as volumes and that are not rendered. */
export const externalVolumes = (pod: any, objects: ReadonlyArray<K8sObject>) =>
  (pod.volumes ?? []).flatMap((volume: any) => {
    const ref = volume.configMap
      ? { kind: "ConfigMap" as const, name: volume.configMap.name }
      : volume.secret
      ? { kind: "Secret" as const, name: volume.secret.secretName }
      : undefined
    return ref && !objects.some((o) => o.kind === ref.kind && o.metadata.name === ref.name) ? [ref] : []
  }) as ReadonlyArray<{ readonly kind: "ConfigMap" | "Secret"; readonly name: string }>
