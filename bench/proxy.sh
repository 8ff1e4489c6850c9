#!/usr/bin/env bash
# Egress proxy benchmark: the real `bottle-bundle proxy` binary against a
# direct connection and Debian's tinyproxy, in one run, on three settings:
#   loopback  upstream in the benchmark process on 127.0.0.1 (CPU-bound: the
#             worst case for a relay);
#   veth      upstream in a network namespace behind an unshaped veth pair;
#   link      upstream in a network namespace behind an emulated link of
#             LINK_MBIT Mbit/s and LINK_DELAY one way (bench/linkem: this
#             kernel has no netem), the shape of a user's uplink.
# The client and the proxy stay on the host side, as in a bottle, where the
# proxy's upstream side goes out over the link.
# Usage: bash bench/proxy.sh [proxybench flags, e.g. -size 268435456 -runs 1]
#   SETTINGS="loopback veth link" LINK_MBIT=1000 LINK_DELAY=2ms
# Prints markdown tables (the numbers in docs/benchmarks.md come from it).
set -euo pipefail
cd "$(dirname "$0")/.."

settings=${SETTINGS:-loopback veth link}
link_mbit=${LINK_MBIT:-1000}
link_delay=${LINK_DELAY:-2ms}

if ! command -v tinyproxy >/dev/null 2>&1; then
	echo "bench: installing tinyproxy" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tinyproxy >/dev/null
fi
if ! command -v ip >/dev/null 2>&1; then
	echo "bench: installing iproute2" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
fi

out=$(mktemp -d)
ns=pxbench-$$
linkpid=
cleanup() {
	if [ -n "$linkpid" ]; then kill "$linkpid" 2>/dev/null || true; wait "$linkpid" 2>/dev/null || true; fi
	ip netns del "$ns" 2>/dev/null || true
	ip link del pxb$$h 2>/dev/null || true
	rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
CGO_ENABLED=0 go build -trimpath -o "$out/bottle-bundle" ./cmd/bottle-bundle
go build -o "$out/proxybench" ./bench/proxybench
go build -o "$out/linkem" ./bench/linkem

echo "# egress proxy benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $(go version | cut -d' ' -f3), $(tinyproxy -v 2>&1 | head -1), kernel $(uname -r)"

bench() { "$out/proxybench" -bundle "$out/bottle-bundle" -tinyproxy "$(command -v tinyproxy)" "$@"; }

for s in $settings; do
	case $s in
	loopback)
		echo; echo "# Setting: loopback (upstream on 127.0.0.1 in the benchmark process)"; echo
		bench "$@"
		;;
	veth)
		ip netns add "$ns"
		ip link add pxb$$h type veth peer name pxb$$n
		ip link set pxb$$n netns "$ns"
		ip addr add 10.231.2.1/30 dev pxb$$h
		ip link set pxb$$h up
		ip -n "$ns" addr add 10.231.2.2/30 dev pxb$$n
		ip -n "$ns" link set pxb$$n up
		ip -n "$ns" link set lo up
		echo; echo "# Setting: veth (upstream in namespace $ns behind an unshaped veth pair)"; echo
		bench -netns "$ns" -upstream-ip 10.231.2.2 -sections tput,lat,newconn,https "$@"
		ip link del pxb$$h
		ip netns del "$ns"
		;;
	link)
		ip netns add "$ns"
		"$out/linkem" -ns "$ns" -host-dev pxb$$h -ns-dev pxb$$n -host-ip 10.231.3.1 -ns-ip 10.231.3.2 \
			-rate-mbit "$link_mbit" -delay "$link_delay" >"$out/linkem.out" &
		linkpid=$!
		for _ in $(seq 50); do grep -q ready "$out/linkem.out" 2>/dev/null && break; sleep 0.1; done
		grep -q ready "$out/linkem.out" || { echo "bench: linkem did not start" >&2; exit 1; }
		echo; echo "# Setting: link (upstream in namespace $ns behind an emulated $link_mbit Mbit/s link, $link_delay each way)"; echo
		bench -netns "$ns" -upstream-ip 10.231.3.2 -sections tput,lat,newconn,https "$@"
		kill "$linkpid"; wait "$linkpid" 2>/dev/null || true; linkpid=
		ip netns del "$ns"
		;;
	*)
		echo "bench: unknown setting $s (want loopback, veth, link)" >&2; exit 2
		;;
	esac
done
