#!/bin/sh
# Builds the native netsched-cni thin client: build.sh OUTPUT [COMPILER FLAG...]
# One static executable (C and the C library's archive, libc6-dev's libc.a: no dynamic
# loader, nothing on the host needed); `make cni-client` and deploy/Dockerfile both build
# it with this script. Compiler flags are for tests, e.g. -DREPLY_TIMEOUT_S=1.
set -eu
output=$(realpath -m "$1")
shift
cd "$(dirname "$0")"
mkdir -p "$(dirname "$output")"
${CC:-cc} -std=c11 -O2 -Wall -Wextra -static -s "$@" -o "$output" main.c json.c sha256.c
