#!/bin/sh
# Builds the native netsched-cni thin client: build.sh OUTPUT [LINKER FLAG...]
# One static executable (no cgo, no libc), standard library only, so nothing is
# downloaded; `make cni-client` and deploy/Dockerfile both build it with this script.
# Linker flags are for tests, e.g. -X main.replyTimeout=1s.
set -eu
output=$(realpath -m "$1")
shift
cd "$(dirname "$0")"
if [ -z "${GOCACHE:-}${XDG_CACHE_HOME:-}${HOME:-}" ]; then
    export GOCACHE=/tmp/netsched-go-build # go needs a build cache; no HOME says where
fi
CGO_ENABLED=0 GOTOOLCHAIN=local GOPROXY=off GOFLAGS= \
    go build -trimpath -buildvcs=false -ldflags="-s -w $*" -o "$output" .
