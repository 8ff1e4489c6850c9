#!/usr/bin/env bash
# Make sure a Docker engine answers. When none does and this is a Debian-like
# machine where we are root, install Debian's docker.io and start dockerd in
# the background (what CI and a fresh machine need); otherwise say what to do.
set -euo pipefail

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_up; then
	exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "engine: no Docker engine answers; start Docker (or dockerd) and run this again" >&2
	exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
	echo "engine: installing Debian's docker.io" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
echo "engine: starting dockerd (log: /tmp/dockerd.log)" >&2
nohup dockerd >/tmp/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
	engine_up && break
	sleep 1
done
if ! engine_up; then
	echo "engine: dockerd did not come up:" >&2
	tail -n 30 /tmp/dockerd.log >&2
	exit 1
fi
docker version --format 'engine: {{.Server.Version}} (API {{.Server.APIVersion}}) is up' >&2
