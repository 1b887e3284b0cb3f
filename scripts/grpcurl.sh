#!/usr/bin/env bash
# grpcurl, pinned, in .tools/bin: the TLS suite calls the gRPC edges with it, as an
# operator would (CI runs this first).
exec bash "$(dirname "$0")/go-tool.sh" grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl v1.9.3
