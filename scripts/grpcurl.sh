#!/usr/bin/env bash
# grpcurl, pinned, in .tools/bin: the TLS suites call the gRPC edges with it, as an
# operator would (CI runs this first). Installed from the Go module proxy with `go install`.
#
#   bash scripts/grpcurl.sh     install when absent or another version; print the path
set -euo pipefail

version="v1.9.3"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.tools/bin/grpcurl"

if [ -x "$bin" ] && [ "$("$bin" -version 2>&1)" = "grpcurl $version" ]; then
  echo "grpcurl: $version at $bin"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "grpcurl: installing needs Go (https://go.dev/doc/install), or put grpcurl $version at $bin" >&2
  exit 1
fi
echo "grpcurl: installing $version"
# Go's progress (`go: downloading ...`) shows only when the install fails.
log="$(mktemp)"
if ! GOBIN="$root/.tools/bin" go install -ldflags "-X main.version=$version" \
  "github.com/fullstorydev/grpcurl/cmd/grpcurl@$version" >"$log" 2>&1; then
  cat "$log" >&2; rm -f "$log"; exit 1
fi
rm -f "$log"
echo "grpcurl: $("$bin" -version 2>&1) at $bin"
