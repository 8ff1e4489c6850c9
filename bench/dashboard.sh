#!/usr/bin/env bash
# Benchmark of `docker bottle dashboard` (docs/benchmarks.md, "Dashboard"):
# with 20 running bottles (shell agent, docker backend), the CPU of one
# refresh of the dashboard and the load its refreshes put on the
# supervisors, the bundles and the engine, against the same bottles idle
# with no dashboard, in one run. Needs a Docker engine, root and debootstrap
# (for the Debian base image). Usage: bash bench/dashboard.sh [-bottles N]
# [-window 30s] [-interval 1s]
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
docker image inspect docker-bottle-test/bookworm-base:1 >/dev/null 2>&1 || bash hack/debian-base.sh docker-bottle-test/bookworm-base:1
go run ./bench/dashbench "$@"
