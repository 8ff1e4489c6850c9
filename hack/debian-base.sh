#!/usr/bin/env bash
# Makes the Debian bookworm base image that tests and benchmarks build on,
# since no image can be pulled on the build machines: debootstrap (minbase
# plus ca-certificates, curl, git, less, procps) with the host's CA roots,
# imported into the engine under TAG. Needs root and debootstrap.
# Usage: bash hack/debian-base.sh TAG [MIRROR]
set -euo pipefail
tag=${1:?usage: debian-base.sh TAG [MIRROR]}
mirror=${2:-${DOCKER_BOTTLE_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}}
roots=/etc/ssl/certs/ca-certificates.crt

[ "$(id -u)" = 0 ] || { echo "debian-base: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debian-base: install debootstrap (bash hack/tools.sh debootstrap)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase --include=ca-certificates,curl,git,less,procps bookworm "$work/rootfs" "$mirror" >"$work/log" 2>&1 ||
	{ tail -n 40 "$work/log" >&2; exit 1; }
# The host's roots, kept by a later update-ca-certificates and in force at
# once, so builds on the base work behind an intercepting proxy as the
# host does.
cp "$roots" "$work/rootfs/usr/local/share/ca-certificates/host-roots.crt"
cp "$roots" "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$work/rootfs/var/cache/apt/archives"
tar -C "$work/rootfs" -c . | docker import -c 'LABEL dev.dockerbottle.test=1' -c 'CMD ["bash"]' - "$tag" >/dev/null
echo "debian-base: $tag"
