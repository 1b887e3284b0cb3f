#!/usr/bin/env bash
# kustomize, pinned, in .tools/bin: the manifest tests render the overlays with it
# (CI runs this first). Installed from the Go module proxy with `go install`.
#
#   bash scripts/kustomize.sh     install when absent or another version; print the path
set -euo pipefail

version="v5.8.1"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.tools/bin/kustomize"

if [ -x "$bin" ] && [ "$("$bin" version 2>/dev/null)" = "$version" ]; then
  echo "kustomize: $version at $bin"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "kustomize: installing needs Go (https://go.dev/doc/install), or put kustomize $version at $bin" >&2
  exit 1
fi
echo "kustomize: installing $version"
# Go's progress (`go: downloading ...`, a line per module) shows only when the install fails.
log="$(mktemp)"
if ! GOBIN="$root/.tools/bin" go install "sigs.k8s.io/kustomize/kustomize/v5@$version" >"$log" 2>&1; then
  cat "$log" >&2; rm -f "$log"; exit 1
fi
rm -f "$log"
echo "kustomize: $("$bin" version) at $bin"
