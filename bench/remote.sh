#!/usr/bin/env bash
# Benchmark of `docker bottle run` on remote docker contexts (docs/benchmarks.md,
# "Remote contexts"): `docker bottle run -d` until the agent's first line
# against `docker --context X run -d` of the same image until its first line,
# on the local engine and on the remote-tls and remote-ssh contexts of the
# test harness (hack/remote-engine.sh), which it starts and tears down. Needs
# a Docker engine, root and debootstrap.
#
#   bash bench/remote.sh [-runs N]           every row, bottle included
#   bash bench/remote.sh -plain-remote [...]  the remote rows without the
#                                             bottle
#
# The local row runs the bottle with DOCKER_BOTTLE_TEST_THROUGH_ENGINE=1, so the
# bottle goes through the engine API as on a remote engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bottle_remote=true
if [ "${1:-}" = -plain-remote ]; then
	bottle_remote=false
	shift
fi
base=docker-bottle-test/bookworm-base:1
make -s build
docker image inspect "$base" >/dev/null 2>&1 || bash hack/debian-base.sh "$base"

bash hack/remote-engine.sh up
trap 'bash hack/remote-engine.sh down' EXIT
eval "$(bash hack/remote-engine.sh env | sed 's/^/export /')"
export PATH="$DOCKER_BOTTLE_REMOTE_PATH:$PATH"

echo "| context | docker run -d, first line | docker bottle run -d, first line | bottle / docker run |"
echo "|---|---:|---:|---:|"
# git-remote-bottle (make build puts it in bin/) fetches a bottle's work
# through the engine, as the bottle's registered remote does there.
PATH="$PWD/bin:$PATH" DOCKER_BOTTLE_TEST_THROUGH_ENGINE=1 \
	go run ./bench/runbench -plugin bin/docker-bottle -row -context default "$@"
for ctx in "$DOCKER_BOTTLE_REMOTE_TLS_CONTEXT" "$DOCKER_BOTTLE_REMOTE_SSH_CONTEXT"; do
	# The agent image builds on the local Debian base: the far engine gets it
	# as docker does, through the engine API.
	DOCKER_CONFIG=$DOCKER_BOTTLE_REMOTE_CONFIG docker --context "$ctx" image inspect "$base" >/dev/null 2>&1 ||
		docker save "$base" | DOCKER_CONFIG=$DOCKER_BOTTLE_REMOTE_CONFIG docker --context "$ctx" load -q
	PATH="$PWD/bin:$PATH" go run ./bench/runbench -plugin bin/docker-bottle -row -context "$ctx" \
		-contexts-from "$DOCKER_BOTTLE_REMOTE_CONFIG" -bottle="$bottle_remote" "$@"
done
