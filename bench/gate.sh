#!/usr/bin/env bash
# Git gate benchmark: clone time and peak memory of a large generated
# repository (20k commits, ~250 MB packed) through the gate, through
# `git http-backend` (served by Go's net/http/cgi) and with
# `git clone --no-local` from the path. Prints one line per clone and a
# summary; numbers go into docs/benchmarks.md ("Git gate").
#
#   bash bench/gate.sh            # WORK=/tmp/gate-bench RUNS=5 COMMITS=20000
#
# The generated repository is kept in $WORK and reused by later runs.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/gate-bench}
RUNS=${RUNS:-5}
COMMITS=${COMMITS:-20000}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need git || [ ! -x /usr/bin/time ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git time >/dev/null
fi
need go || { echo "bench: go is required"; exit 1; }

mkdir -p "$WORK"
go build -o "$WORK/bottle-bundle" ./cmd/bottle-bundle
go build -o "$WORK/gatebench" ./bench/gatebench
export HOME="$WORK/home" GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
mkdir -p "$HOME"
TOKEN="$WORK/token"
[ -f "$TOKEN" ] || { head -c 32 /dev/urandom | base64 | tr -d '=+/\n' >"$TOKEN"; chmod 600 "$TOKEN"; }
cat >"$HOME/.gitconfig" <<CFG
[user]
	name = Bench
	email = bench@example.com
[credential]
	helper = "!f() { test \"\$1\" = get && echo username=bottle && echo password=\$(cat '$TOKEN'); }; f"
CFG

USER_REPO="$WORK/user"
if [ ! -f "$USER_REPO/.generated" ]; then
	echo "bench: generating $COMMITS commits (fast-import, then repack -adf; takes minutes)"
	rm -rf "$USER_REPO" && git init -q "$USER_REPO"
	"$WORK/gatebench" gen -commits "$COMMITS" | git -C "$USER_REPO" fast-import --quiet
	git -C "$USER_REPO" repack -a -d -f -q
	git -C "$USER_REPO" checkout -q -f main
	touch "$USER_REPO/.generated"
fi
echo "bench: repository: $(git -C "$USER_REPO" rev-list --count main) commits, $(git -C "$USER_REPO" count-objects -v | awk '/^in-pack/ {o=$2} /^size-pack/ {s=$2} END {printf "%d objects, %.1f MiB packed", o, s/1024}')"

STAGE="$WORK/stage/repo.git"
rm -rf "$WORK/stage" && mkdir -p "$WORK/stage"
echo "bench: gitstage.Prepare (hard-linking local clone): $("$WORK/gatebench" prepare "$USER_REPO" "$STAGE") s"

cat >"$WORK/gate.json" <<JSON
{"listen":"127.0.0.1:18419","bottle":"bench","repo":"$STAGE","token_file":"$TOKEN"}
JSON

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

results="$WORK/results.txt"
: >"$results"
clone() { # name url-or-path extra-args...
	local name=$1 src=$2; shift 2
	rm -rf "$WORK/clone"
	/usr/bin/time -f "%e %M" -o "$WORK/time.out" git clone -q "$@" "$src" "$WORK/clone"
	git -C "$WORK/clone" rev-parse HEAD >/dev/null
	read -r secs client_kb <"$WORK/time.out"
	echo "$secs $client_kb"
}

for run in $(seq 1 "$RUNS"); do
	# The gate: a fresh process per clone, so VmHWM is this clone's peak.
	"$WORK/bottle-bundle" gate --config "$WORK/gate.json" 2>"$WORK/gate.log" &
	gpid=$!
	wait_port 18419
	read -r secs client_kb < <(clone gate "http://127.0.0.1:18419/repo.git")
	server_kb=$("$WORK/gatebench" peak "$gpid")
	server_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' "/proc/$gpid/stat")
	kill "$gpid"; wait "$gpid" 2>/dev/null || true
	echo "run $run gate          clone ${secs}s  server peak ${server_kb} KiB  server cpu ${server_cpu}s  client peak ${client_kb} KiB" | tee -a "$results"

	# git http-backend under net/http/cgi; GNU time records each request's
	# process-tree peak.
	: >"$WORK/cgi-mem"
	"$WORK/gatebench" cgi -root "$WORK/stage" -listen 127.0.0.1:18420 -mem "$WORK/cgi-mem" >/dev/null &
	cpid=$!
	wait_port 18420
	read -r secs client_kb < <(clone backend "http://127.0.0.1:18420/repo.git")
	kill "$cpid"; wait "$cpid" 2>/dev/null || true
	server_kb=$(awk '{print $1}' "$WORK/cgi-mem" | sort -n | tail -1)
	server_cpu=$(awk '{s+=$2+$3} END {printf "%.2f", s}' "$WORK/cgi-mem")
	echo "run $run http-backend  clone ${secs}s  server peak ${server_kb} KiB  server cpu ${server_cpu}s  client peak ${client_kb} KiB" | tee -a "$results"

	# --no-local from the path: upload-pack and pack-objects run under the
	# clone, so GNU time's peak covers client and server alike.
	read -r secs all_kb < <(clone nolocal "$STAGE" --no-local)
	echo "run $run no-local      clone ${secs}s  peak (client and server) ${all_kb} KiB" | tee -a "$results"
done
rm -rf "$WORK/clone"
echo "bench: medians (clone wall time; server CPU where measured)"
for kind in gate http-backend no-local; do
	awk -v k="$kind" '$3==k {gsub("s","",$5); print $5}' "$results" | sort -n | awk -v k="$kind" '{a[NR]=$1} END {printf "  %-13s clone %.2fs", k, a[int((NR+1)/2)]}'
	awk -v k="$kind" '$3==k && $11=="cpu" {gsub("s","",$12); print $12}' "$results" | sort -n | awk '{a[NR]=$1} END {if (NR) printf "  server cpu %.2fs", a[int((NR+1)/2)]}'
	echo
done
