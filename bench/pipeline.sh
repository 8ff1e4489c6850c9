#!/usr/bin/env bash
# Benchmark of the agent image pipeline (docs/benchmarks.md, "Agent image
# pipeline"), one run on a generated 1 GiB image of 8 layers:
#   floor  docker save IMG > /dev/null              (the engine's export floor)
#   cold   pipeline run, empty cache: export into the blob store, bottle
#          layer, push to the embedded registry (then a pull of every blob,
#          timed apart, standing in for smolvm's)
#   crane  docker save IMG > file && crane push file (go-containerregistry's
#          own command, to the same kind of registry)
#   warm   pipeline run again: artifact cache hit
# Needs a Docker engine and the go toolchain; installs crane from the module
# proxy. Usage: bash bench/pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash hack/tools.sh crane
if [ ! -x /usr/bin/time ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
gobin=$(go env GOBIN); [ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
crane="$gobin/crane"

work=$(mktemp -d /var/tmp/bottle-bench.XXXXXX)
img="docker-bottle-bench/pipeline:1g-$$"
serve_pid=""
cleanup() {
	exec 3>&- 2>/dev/null || true
	[ -z "$serve_pid" ] || wait "$serve_pid" 2>/dev/null || true
	docker rmi -f "$img" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "bench: generating a 1 GiB image of 8 layers (64 MiB random + 64 MiB text each)"
mkdir -p "$work/ctx"
{
	echo "FROM scratch"
	for i in $(seq 1 8); do echo "COPY layer$i.bin /data/layer$i.bin"; done
} >"$work/ctx/Dockerfile"
for i in $(seq 1 8); do
	{ head -c 64M /dev/urandom; head -c 64M < <(yes "docker bottle benchmark, layer $i, some text to compress"); } >"$work/ctx/layer$i.bin"
done
DOCKER_BUILDKIT=0 docker build -q --label dev.dockerbottle.bench=1 -t "$img" "$work/ctx" >/dev/null
rm -rf "$work/ctx"
size=$(docker image inspect -f '{{.Size}}' "$img")
echo "bench: image $img, $size bytes, $(docker image inspect -f '{{len .RootFS.Layers}}' "$img") layers"

go build -o "$work/pipeline" ./bench/pipeline
"$work/pipeline" ca >"$work/ca.pem"

echo "bench: warming the page cache (one docker save, not measured)"
docker save "$img" >/dev/null

t0=$(now); docker save "$img" >/dev/null; t1=$(now)
floor=$(elapsed "$t0" "$t1")
echo "bench: floor  docker save > /dev/null: ${floor}s"

cold=$("$work/pipeline" run -image "$img" -cache "$work/cache" -ca "$work/ca.pem")
echo "bench: cold   $cold"
warm=$("$work/pipeline" run -image "$img" -cache "$work/cache" -ca "$work/ca.pem")
echo "bench: warm   $warm"

# crane pushes to the same registry code over a fresh store.
password=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkfifo "$work/stdin"
"$work/pipeline" serve -cache "$work/crane-store" -password "$password" <"$work/stdin" >"$work/host" 2>"$work/serve.log" &
serve_pid=$!
exec 3>"$work/stdin"
for _ in $(seq 1 50); do [ -s "$work/host" ] && break; sleep 0.1; done
host=$(head -n1 "$work/host")
mkdir -p "$work/dockercfg"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$host" "$(printf 'bench:%s' "$password" | base64 -w0)" >"$work/dockercfg/config.json"
t0=$(now)
docker save "$img" >"$work/img.tar"
DOCKER_CONFIG="$work/dockercfg" /usr/bin/time -f '%M' -o "$work/crane.rss" "$crane" push "$work/img.tar" "$host/bench/crane:1" >/dev/null 2>"$work/crane.log"
t1=$(now)
cranet=$(elapsed "$t0" "$t1")
echo "bench: crane  docker save > file && crane push: ${cranet}s, crane peak RSS $(cat "$work/crane.rss") KiB"
exec 3>&-
wait "$serve_pid"; serve_pid=""

field() { echo "$1" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p"; }
coldt=$(field "$cold" push)
printf '\nbench: results (one run; %s bytes image; load average %s)\n' "$size" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-48s %8.2f s\n' "docker save > /dev/null (export floor)" "$floor"
printf '  %-48s %8.2f s  (%sx floor)\n' "cold push to the embedded registry" "$coldt" "$(ratio "$coldt" "$floor")"
printf '  %-48s %8.2f s\n' "  of which export into the blob store" "$(field "$cold" export)"
printf '  %-48s %8.2f s\n' "  then a pull of every blob (smolvm's side)" "$(field "$cold" pull_seconds)"
printf '  %-48s %8.2f s  peak RSS %d MiB\n' "  whole cold run (push + pull + stub pack)" "$(field "$cold" seconds)" "$(( $(field "$cold" peak_rss_bytes) >> 20 ))"
printf '  %-48s %8.2f s  (%sx floor), crane peak RSS %d MiB\n' "docker save > file && crane push" "$cranet" "$(ratio "$cranet" "$floor")" "$(( $(cat "$work/crane.rss") >> 10 ))"
printf '  %-48s %8.3f s  exported %s B, pushed %s B, hit %s, peak RSS %d MiB\n' "warm run (artifact cache hit)" "$(field "$warm" seconds)" "$(field "$warm" bytes_exported)" "$(field "$warm" bytes_pushed)" "$(field "$warm" cache_hit)" "$(( $(field "$warm" peak_rss_bytes) >> 20 ))"
