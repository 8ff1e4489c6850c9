#!/usr/bin/env bash
# Tests of hack/remote-engine.sh's down against its pid file, without the
# harness: a temp state dir, `ip` stubbed (no namespace or link is touched),
# and processes of this test's own in place of the harness's.
#   1. a stale pid file whose pid is now an unrelated process: down kills
#      neither it nor its children, and removes the state;
#   2. a pid file naming an unshare started as up starts it: down kills it
#      and its child.
set -euo pipefail

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() { echo "remote-engine-test: FAIL: $*" >&2; exit 1; }
alive() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" | cut -c1)" != Z ]; }
# first_child waits for pid $1's first child and prints it.
first_child() {
	local c
	for _ in $(seq 1 100); do
		c=$(pgrep -P "$1" | head -n1) && [ -n "$c" ] && { echo "$c"; return 0; }
		sleep 0.05
	done
	return 1
}

export DOCKER_BOTTLE_REMOTE_STATE=$tmp/state
# shellcheck source=hack/remote-engine.sh
source "$(dirname "$0")/remote-engine.sh"
ip() { return 1; }

# 1. An unrelated process with a child, under the pid file's pid.
mkdir -p "$state"
bash -c 'sleep 300 & wait' &
other=$!
disown
pids+=("$other")
child=$(first_child "$other") || fail "the unrelated process has no child"
pids+=("$child")
echo "$other" >"$state/pid"
running && fail "running takes the unrelated pid $other for the harness"
down_quiet 2>"$tmp/say"
alive "$child" || fail "down killed the child $child of the unrelated process $other"
alive "$other" || fail "down killed the unrelated process $other"
[ -e "$state" ] && fail "down left the state dir"
grep -q "not the harness's unshare" "$tmp/say" || fail "down did not say why it killed nothing: $(cat "$tmp/say")"

# 2. An unshare as up starts it (setsid, this state dir's init.sh).
mkdir -p "$state/rootfs"
echo 'exec sleep 300' >"$state/init.sh"
setsid unshare --fork --kill-child bash "$state/init.sh" "$state/rootfs" </dev/null >/dev/null 2>&1 &
harness=$!
disown
pids+=("$harness")
echo "$harness" >"$state/pid"
far=$(first_child "$harness") || fail "the fake harness has no child"
pids+=("$far")
running || fail "running does not recognise the harness's unshare $harness ($(tr '\0' ' ' <"/proc/$harness/cmdline"))"
down_quiet
alive "$far" && fail "down left the harness's child $far"
alive "$harness" && fail "down left the harness's unshare $harness"
[ -e "$state" ] && fail "down left the state dir"
echo "remote-engine-test: ok"
