#!/usr/bin/env bash
# Egress proxy benchmark: the real `bottle-bundle proxy` binary against a
# direct connection and Debian's tinyproxy, on loopback, in one run.
# Usage: bash bench/proxy.sh [proxybench flags, e.g. -size 268435456 -runs 1]
# Prints markdown tables (the numbers in docs/benchmarks.md come from it).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v tinyproxy >/dev/null 2>&1; then
	echo "bench: installing tinyproxy" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tinyproxy >/dev/null
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$out/bottle-bundle" ./cmd/bottle-bundle
go build -o "$out/proxybench" ./bench/proxybench

echo "# egress proxy benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $(go version | cut -d' ' -f3), $(tinyproxy -v 2>&1 | head -1)"
echo
"$out/proxybench" -bundle "$out/bottle-bundle" -tinyproxy "$(command -v tinyproxy)" "$@"
