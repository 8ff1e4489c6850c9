# docker bottle. `make install` puts the plugin where the docker CLI finds it;
# `make test` runs the tests that need no engine, `make e2e` those that do
# (a Docker engine must answer: hack/engine.sh starts one on a fresh Debian
# machine), `make fuzz` the fuzz targets; CI (bash .ci/run) runs all three.

GO        ?= go
PKG       := github.com/docker-bottle/docker-bottle
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT)
DOCKER_CONFIG ?= $(HOME)/.docker
PLUGIN_DIR ?= $(DOCKER_CONFIG)/cli-plugins
BIN       := bin

.PHONY: all build bundle-bins install test e2e lint cross engine tools quickstart fake-smolvm fuzz docs clean

all: build

# The static Linux binaries the plugin embeds (internal/bundlebin): the
# bundle's (daemons and the agent's helper) and the probe's (check's tools),
# gzip-compressed (the plugin is about 40 MB instead of 61).
BUNDLE_BINS := internal/bundlebin/bin
bundle-bins:
	@for arch in amd64 arm64; do for bin in bottle-bundle bottle-probe; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w' \
			-o $(BUNDLE_BINS)/$$bin-linux-$$arch ./cmd/$$bin || exit 1; \
		gzip -9 -n -f $(BUNDLE_BINS)/$$bin-linux-$$arch || exit 1; \
	done; done

# git-remote-bottle is git's helper for bottle::NAME remotes (git fetch
# from a bottle's gate through the engine): git finds it on PATH, so put
# $(PLUGIN_DIR) on PATH, or install it with GIT_HELPER_DIR=a dir on PATH.
GIT_HELPER_DIR ?= $(PLUGIN_DIR)

build: bundle-bins
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/docker-bottle ./cmd/docker-bottle
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/git-remote-bottle ./cmd/git-remote-bottle

install: build
	mkdir -p $(PLUGIN_DIR) $(GIT_HELPER_DIR)
	install -m 0755 $(BIN)/docker-bottle $(PLUGIN_DIR)/docker-bottle
	install -m 0755 $(BIN)/git-remote-bottle $(GIT_HELPER_DIR)/git-remote-bottle

# An engine must answer for the tests; hack/engine.sh starts one on a fresh
# Debian machine.
engine:
	@hack/engine.sh

# What the tests need besides the engine: docker-buildx (built from the
# module proxy), debootstrap, and the pinned real smolvm (from PyPI's
# smolmachines wheel); hack/tools.sh skips what is there.
tools:
	@bash hack/tools.sh buildx debootstrap smolvm

# Tests that need the engine, the docker CLI or the test tools live in
# *_e2e_test.go files built only with -tags e2e; in the plain build the
# testenv helpers that reach for them fail the calling test, so a forgotten
# tag fails make test on every machine. The unit tests of a package with e2e
# files run again in make e2e (seconds).
# hack/remote-engine-test.sh checks the harness's down against its pid
# file without starting the harness.
test: lint bundle-bins
	$(GO) test -count=1 -timeout 20m ./...
	bash hack/remote-engine-test.sh

# The packages that hold e2e tests; in cmd/docker-bottle the independent
# ones run in parallel (go test's -parallel, GOMAXPROCS by default).
# The remote-context tests need the second engine of hack/remote-engine.sh
# (another host in its own namespaces; root only): it comes up first and
# goes down after, whatever the tests say. Without root it is not made, and
# those tests skip (fail with CI=true).
E2E_PKGS = $(sort $(dir $(shell find . -name '*_e2e_test.go' -not -path './.git/*')))
e2e: engine tools bundle-bins
	@if [ "$$(id -u)" = 0 ]; then bash hack/remote-engine.sh up; \
		else echo "e2e: not root, so no remote engine (hack/remote-engine.sh): its tests skip" >&2; fi
	status=0; PATH="$$($(GO) env GOPATH)/bin:$$PATH" $(GO) test -tags e2e -count=1 -timeout 45m $(E2E_PKGS) || status=$$?; \
		if [ "$$(id -u)" = 0 ]; then bash hack/remote-engine.sh down || status=1; fi; exit $$status

# The main job on a built-in default: install the plugin, check this host,
# then run the probe agent in a real bottle and print the report card. The
# pinned smolvm is installed and used unless DOCKER_BOTTLE_SMOLVM or a
# smolvm on PATH says otherwise; `auto` picks the microVM backend only
# where a test microVM boots.
quickstart: engine install
	@bash hack/tools.sh smolvm
	@smolvm=$${DOCKER_BOTTLE_SMOLVM:-$$(command -v smolvm || bash hack/tools.sh smolvm-path)}; \
		DOCKER_BOTTLE_SMOLVM=$$smolvm docker bottle doctor && DOCKER_BOTTLE_SMOLVM=$$smolvm docker bottle check

# Fuzz targets, each for a bounded number of inputs (CI runs them: bash .ci/run).
# A count, not a duration: a timed run can end in Go's fuzzing engine with
# "context deadline exceeded" when a worker is busy at the deadline (a
# loaded machine), which would fail CI for nothing the code did.
FUZZTIME ?= 40000x
# A whole push is costlier per input (it builds and checks objects).
FUZZTIME_PUSH ?= 10000x
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzServeConn$$' -fuzztime=$(FUZZTIME) ./bundle/proxy
	$(GO) test -run='^$$' -fuzz='^FuzzHostMatch$$' -fuzztime=$(FUZZTIME) ./bundle/proxy
	$(GO) test -run='^$$' -fuzz='^FuzzParseConfig$$' -fuzztime=$(FUZZTIME) ./bundle/proxy
	$(GO) test -run='^$$' -fuzz='^FuzzRedact$$' -fuzztime=$(FUZZTIME) ./bundle/proxy
	$(GO) test -run='^$$' -fuzz='^FuzzRedactForms$$' -fuzztime=$(FUZZTIME) ./bundle/proxy
	$(GO) test -run='^$$' -fuzz='^FuzzFormOverride$$' -fuzztime=$(FUZZTIME) ./bundle/proxy
	$(GO) test -run='^$$' -fuzz='^FuzzClientHello$$' -fuzztime=$(FUZZTIME) ./bundle/proxy
	$(GO) test -run='^$$' -fuzz='^FuzzGitmodules$$' -fuzztime=$(FUZZTIME) ./bundle/gate
	$(GO) test -run='^$$' -fuzz='^FuzzReceiveSecrets$$' -fuzztime=$(FUZZTIME) ./cmd/bottle-bundle
	$(GO) test -run='^$$' -fuzz='^FuzzReader$$' -fuzztime=$(FUZZTIME) ./bundle/gate/internal/pktline
	$(GO) test -run='^$$' -fuzz='^FuzzReadCommands$$' -fuzztime=$(FUZZTIME) ./bundle/gate
	$(GO) test -run='^$$' -fuzz='^FuzzReceivePack$$' -fuzztime=$(FUZZTIME_PUSH) ./bundle/gate
	$(GO) test -run='^$$' -fuzz='^FuzzIndexPack$$' -fuzztime=$(FUZZTIME) ./bundle/gate/internal/repo
	$(GO) test -run='^$$' -fuzz='^FuzzApplyDelta$$' -fuzztime=$(FUZZTIME) ./bundle/gate/internal/repo
	$(GO) test -run='^$$' -fuzz='^FuzzFindSecret$$' -fuzztime=$(FUZZTIME) ./agentconf
	$(GO) test -run='^$$' -fuzz='^FuzzFilters$$' -fuzztime=$(FUZZTIME) ./agentconf
	$(GO) test -run='^$$' -fuzz='^FuzzParsePort$$' -fuzztime=$(FUZZTIME) ./spec
	$(GO) test -run='^$$' -fuzz='^FuzzReadRequest$$' -fuzztime=$(FUZZTIME) ./cmd/git-remote-bottle
	$(GO) test -run='^$$' -fuzz='^FuzzDialStream$$' -fuzztime=$(FUZZTIME_PUSH) ./backend/docker

# The reference of every command (docs/reference), from the cobra tree;
# a test fails when the committed files are stale.
docs:
	$(GO) run ./docs/generate

# gofmt, go vet and golangci-lint (.golangci.yml; the pinned version from
# hack/tools.sh).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...
	@bash hack/tools.sh golangci-lint
	@gobin=$$($(GO) env GOBIN); gobin=$${gobin:-$$($(GO) env GOPATH)/bin}; \
		echo "$$gobin/golangci-lint run --build-tags e2e ./..."; "$$gobin/golangci-lint" run --build-tags e2e ./...

cross: bundle-bins
	@for p in linux/amd64 linux/arm64 darwin/arm64 darwin/amd64; do \
		os=$${p%/*}; arch=$${p#*/}; echo "cross: bundle-bins $$p"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
			-o $(BIN)/cross/docker-bottle-$$os-$$arch ./cmd/docker-bottle || exit 1; \
	done

# The contract fake of smolvm for tests (smolvm/fakesmolvm). Put
# $(BIN)/fake-smolvm first on PATH, or set DOCKER_BOTTLE_SMOLVM to it.
fake-smolvm:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/fake-smolvm/smolvm ./smolvm/fakesmolvm

clean:
	rm -rf $(BIN) $(BUNDLE_BINS)/bottle-*-linux-*
