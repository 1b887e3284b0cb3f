#!/usr/bin/env bash
# Regenerates packages/proto/src/gen from proto/ (see scripts/generate.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
node --import tsx scripts/generate.ts "$@"
