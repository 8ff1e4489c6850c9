#!/usr/bin/env bash
# Installs the tools the tests and benchmarks use, built from the Go module
# proxy (no binary downloads) or from Debian's packages:
#   docker-buildx  the buildx CLI plugin (v0.30.1), for the buildx build path
#   crane          go-containerregistry's crane (v0.22.1), for the benchmark
#   debootstrap    Debian's, for the test that builds the claude image on a
#                  locally made Debian base (nothing can be pulled)
# into $GOBIN (default $(go env GOPATH)/bin), which the tests search. Skips a
# tool already there. Usage: bash hack/tools.sh [crane] [buildx]
# (both when none is named).
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
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
mkdir -p "$gobin"

if [[ $want == *" crane "* && ! -x "$gobin/crane" ]]; then
	echo "tools: building crane $CRANE_VERSION"
	GOBIN="$gobin" CGO_ENABLED=0 go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
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
