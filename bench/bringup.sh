#!/usr/bin/env bash
# Benchmark of the bundle's bring-up (docs/benchmarks.md, "Bundle bring-up"):
# cold (bundle image absent: assembled from the embedded binary and loaded),
# warm (image present), and a bare `docker network create` + `docker run -d`
# of the same image with the same flags, each until the supervisor answers
# healthy. Needs a Docker engine. Usage: bash bench/bringup.sh [-runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
make -s bundle-bins
go run ./bench/bringupbench "$@"
