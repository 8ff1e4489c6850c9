#!/usr/bin/env bash
# Benchmark of `docker bottle run` (docs/benchmarks.md, "docker bottle run"):
# the bundle's warm bring-up, then `docker bottle run -d` until the agent's
# first line with a warm cache against `docker run -d` of the same image,
# in one run. Needs a Docker engine, root and debootstrap (for the Debian
# base the agent image builds on). Usage: bash bench/run.sh [-runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
docker image inspect docker-bottle-test/bookworm-base:1 >/dev/null 2>&1 || bash hack/debian-base.sh docker-bottle-test/bookworm-base:1
go run ./bench/bringupbench "$@" | tail -n 4
go run ./bench/runbench -plugin bin/docker-bottle "$@"
