# docker bottle. `make install` puts the plugin where the docker CLI finds it;
# `make test` runs every test (a Docker engine must answer: bash .ci/run
# starts one on a fresh Debian machine).

GO        ?= go
PKG       := github.com/docker-bottle/docker-bottle
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT)
DOCKER_CONFIG ?= $(HOME)/.docker
PLUGIN_DIR ?= $(DOCKER_CONFIG)/cli-plugins
BIN       := bin

.PHONY: all build install test lint cross fake-smolvm clean fuzz

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/docker-bottle ./cmd/docker-bottle

install: build
	mkdir -p $(PLUGIN_DIR)
	install -m 0755 $(BIN)/docker-bottle $(PLUGIN_DIR)/docker-bottle

test:
	$(GO) test -count=1 -timeout 45m ./...

# Fuzz targets, each for a bounded time (CI runs this from make test).
FUZZTIME ?= 12s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzServeConn$$' -fuzztime=$(FUZZTIME) ./bundle/proxy
	$(GO) test -run='^$$' -fuzz='^FuzzHostMatch$$' -fuzztime=$(FUZZTIME) ./bundle/proxy
	$(GO) test -run='^$$' -fuzz='^FuzzParseConfig$$' -fuzztime=$(FUZZTIME) ./bundle/proxy

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

cross:
	@for p in linux/amd64 linux/arm64 darwin/arm64 darwin/amd64; do \
		os=$${p%/*}; arch=$${p#*/}; echo "cross: $$p"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
			-o $(BIN)/cross/docker-bottle-$$os-$$arch ./cmd/docker-bottle || exit 1; \
	done

clean:
	rm -rf $(BIN)
