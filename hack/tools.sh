#!/usr/bin/env bash
# Installs the tools the tests and benchmarks use, built from the Go module
# proxy (no binary downloads) or from Debian's packages:
#   docker-buildx  the buildx CLI plugin (v0.30.1), for the buildx build path
#   crane          go-containerregistry's crane (v0.22.1), for the benchmark
#   golangci-lint  golangci-lint (v2.15.0), for make lint (.golangci.yml)
#   debootstrap    Debian's, for the test that builds the claude image on a
#                  locally made Debian base (nothing can be pulled)
#   smolvm         smol-machines' smolvm (pinned below), from the PyPI wheel
#                  smolmachines, which carries smolvm's CLI, libkrun,
#                  libkrunfw (the guest kernel) and the agent rootfs; checked
#                  against the pinned sha256, unpacked into
#                  $(go env GOPATH)/share/docker-bottle/smolvm-VERSION, or as
#                  root into /usr/local/lib/docker-bottle/smolvm-VERSION
#                  (never the source tree; not put on PATH). `bash hack/tools.sh
#                  smolvm-path` prints the binary's path.
# into $GOBIN (default $(go env GOPATH)/bin), which the tests search. Skips a
# tool already there (golangci-lint: at its pinned version). Usage: bash
# hack/tools.sh [crane] [buildx] [debootstrap] [golangci-lint] [smolvm] (crane,
# buildx and debootstrap when none is named).
set -euo pipefail

want=" ${*:-crane buildx debootstrap} "

if [[ $want == *" debootstrap "* ]] && ! command -v debootstrap >/dev/null 2>&1; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "tools: debootstrap is missing; install it (apt-get install debootstrap)" >&2
		exit 1
	fi
	echo "tools: installing debootstrap"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

BUILDX_VERSION=v0.30.1
CRANE_VERSION=v0.22.1
GOLANGCI_LINT_VERSION=v2.15.0
# smolvm: one pinned release. The wheel is manylinux x86_64 only; other
# platforms install smolvm their own way (https://smolmachines.com).
SMOLVM_VERSION=1.32.2
SMOLVM_WHEEL=smolmachines-1.32.2-cp39-abi3-manylinux_2_28_x86_64.whl
SMOLVM_WHEEL_SHA256=81b104e2622aa0b187b6b7054397c391151b83db2638a16d0e54c517684f0dc2
smolvm_dir="$(go env GOPATH)/share/docker-bottle/smolvm-$SMOLVM_VERSION"
# As root, smolvm runs each VM's monitor as a uid of its own, which must
# read libkrun and libkrunfw next to the binary: root's home (mode 0700 on
# Debian) hides them ("libkrun/libkrunfw not found"), so root's copy goes
# where every user can read it.
if [ "$(id -u)" = 0 ]; then
	smolvm_dir="/usr/local/lib/docker-bottle/smolvm-$SMOLVM_VERSION"
fi

if [[ $want == " smolvm-path " ]]; then
	echo "$smolvm_dir/smolvm"
	exit 0
fi

gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
mkdir -p "$gobin"

if [[ $want == *" crane "* && ! -x "$gobin/crane" ]]; then
	echo "tools: building crane $CRANE_VERSION"
	GOBIN="$gobin" CGO_ENABLED=0 go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
fi

if [[ $want == *" golangci-lint "* ]] &&
	! "$gobin/golangci-lint" version 2>/dev/null | grep -q "version ${GOLANGCI_LINT_VERSION#v} "; then
	echo "tools: building golangci-lint $GOLANGCI_LINT_VERSION"
	GOBIN="$gobin" CGO_ENABLED=0 go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
fi

if [[ $want == *" buildx "* && ! -x "$gobin/docker-buildx" ]]; then
	# `go install pkg@version` refuses buildx (its go.mod has exclude
	# directives), so build it from a throwaway module that requires it.
	echo "tools: building docker-buildx $BUILDX_VERSION"
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	(
		cd "$work"
		go mod init bottle-buildx-build >/dev/null 2>&1
		go get "github.com/docker/buildx/cmd/buildx@$BUILDX_VERSION" >/dev/null 2>&1
		CGO_ENABLED=0 go build -trimpath \
			-ldflags "-s -w -X github.com/docker/buildx/version.Version=$BUILDX_VERSION -X github.com/docker/buildx/version.Package=github.com/docker/buildx" \
			-o "$gobin/docker-buildx" github.com/docker/buildx/cmd/buildx
	)
fi
[[ $want != *" buildx "* ]] || "$gobin/docker-buildx" version
[[ $want != *" crane "* ]] || echo "crane $("$gobin/crane" version)"

if [[ $want == *" smolvm "* ]]; then
	if [ ! -x "$smolvm_dir/smolvm" ]; then
		if [ "$(uname -s)/$(uname -m)" != Linux/x86_64 ]; then
			echo "tools: smolvm $SMOLVM_VERSION is pinned for Linux x86_64 only; install smolvm yourself and set DOCKER_BOTTLE_SMOLVM" >&2
			exit 1
		fi
		echo "tools: installing smolvm $SMOLVM_VERSION (PyPI wheel smolmachines==$SMOLVM_VERSION)"
		swork=$(mktemp -d)
		trap 'rm -rf "${work:-}" "$swork"' EXIT
		if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
			--python-version 3.11 --dest "$swork" "smolmachines==$SMOLVM_VERSION"; then
			echo "tools: could not download smolmachines==$SMOLVM_VERSION from PyPI (is PyPI reachable? is pip installed?)" >&2
			exit 1
		fi
		if [ ! -f "$swork/$SMOLVM_WHEEL" ]; then
			echo "tools: pip downloaded $(ls "$swork"), not the pinned $SMOLVM_WHEEL" >&2
			exit 1
		fi
		got=$(sha256sum "$swork/$SMOLVM_WHEEL" | cut -d' ' -f1)
		if [ "$got" != "$SMOLVM_WHEEL_SHA256" ]; then
			echo "tools: $SMOLVM_WHEEL has sha256 $got, not the pinned $SMOLVM_WHEEL_SHA256; refusing it" >&2
			exit 1
		fi
		# smolvm finds libkrun, libkrunfw, the agent rootfs and the disk
		# templates next to its own executable.
		python3 - "$swork/$SMOLVM_WHEEL" "$swork/unpacked" <<'PY'
import sys, zipfile
want = {"smol-vmm", "libkrun.so", "libkrunfw.so.5", "agent-rootfs.tar.zst",
        "overlay-template.ext4.zst", "storage-template.ext4.zst", "THIRD_PARTY_NOTICES.md"}
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n.startswith("smol/") and (n[5:] in want or n.startswith("smol/licenses/"))]
    missing = want - {n[5:] for n in names}
    if missing:
        sys.exit("tools: the wheel lacks " + ", ".join(sorted(missing)))
    z.extractall(sys.argv[2], names)
PY
		mv "$swork/unpacked/smol/smol-vmm" "$swork/unpacked/smol/smolvm"
		chmod 0755 "$swork/unpacked/smol/smolvm"
		mkdir -p "$(dirname "$smolvm_dir")"
		rm -rf "$smolvm_dir"
		mv "$swork/unpacked/smol" "$smolvm_dir"
		# Readable by smolvm's per-VM users whatever root's umask.
		chmod -R a+rX "$smolvm_dir"
	fi
	if ! out=$("$smolvm_dir/smolvm" --version 2>&1) || [ "$out" != "smolvm $SMOLVM_VERSION" ]; then
		echo "tools: $smolvm_dir/smolvm does not start: \`smolvm --version\` printed: $out" >&2
		exit 1
	fi
	echo "tools: $out at $smolvm_dir/smolvm"
	# As root, smolvm runs each VM's monitor as a uid of its own and reaches
	# /dev/kvm through the kvm group, as udev sets it up on a usual Linux
	# host (root:kvm 0660). A machine without udev (a container, a bare VM)
	# leaves /dev/kvm root-only; give it the usual group access.
	if [ "$(id -u)" = 0 ] && [ -c /dev/kvm ] && [ "$(stat -c %G /dev/kvm)" != kvm ]; then
		getent group kvm >/dev/null || groupadd --system kvm
		chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
		echo "tools: /dev/kvm is now root:kvm 0660 (as udev sets it), for smolvm's per-VM users"
	fi
fi
