#!/usr/bin/env bash
# kustomize, pinned, in .tools/bin: the manifest tests render the overlays with it
# (CI runs this first).
exec bash "$(dirname "$0")/go-tool.sh" kustomize sigs.k8s.io/kustomize/kustomize/v5 v5.8.1
