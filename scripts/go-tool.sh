#!/usr/bin/env bash
# A command-line tool the tests run, pinned, in .tools/bin, installed from the Go
# module proxy with `go install` when absent or at another version.
#
#   bash scripts/go-tool.sh NAME MODULE VERSION    e.g. grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl v1.9.3
set -euo pipefail

name="$1" module="$2" version="$3"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.tools/bin/$name"
stamp="$root/.tools/bin/.$name.version"

if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module@$version" ]; then
  echo "$name: $version at $bin"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "$name: installing needs Go (https://go.dev/doc/install), or put $name $version at $bin" >&2
  exit 1
fi
echo "$name: installing $version"
# Go's progress (`go: downloading ...`, a line per module) shows only when the install fails.
log="$(mktemp)"
if ! GOBIN="$root/.tools/bin" go install "$module@$version" >"$log" 2>&1; then
  cat "$log" >&2; rm -f "$log"; exit 1
fi
rm -f "$log"
echo "$module@$version" >"$stamp"
echo "$name: $version at $bin"
