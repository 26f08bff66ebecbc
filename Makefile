# Relay Station. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/relay
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
TESTFLAGS ?=
# The system tests (cmd/relay) take longest: listed first, they start first
# and the other packages run beside them.
PKGS := ./cmd/relay ./...

UI_WEB := adapters/http/ui/web

.PHONY: help run build test generate verify lint bench smoke migrate clean ui ui-deps ui-test ui-screenshots

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/relay (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/relay

run: build ## build, then start the relay on embedded SQLite in ./data
	./$(BIN) serve

test: ## the whole suite with -race (PostgreSQL/Redis from TEST_DATABASE_URL/TEST_REDIS_URL)
	$(GO) test -race -count=1 -timeout 20m $(TESTFLAGS) $(PKGS)

generate: ## regenerate the OpenAPI server/client and the sqlc queries
	$(GO) generate ./api/... ./sql/...

verify: generate ui ## fail if generated code, the dashboard bundle or go.mod is stale
	@git diff --exit-code --stat -- api sql adapters || { echo "generated code or the dashboard bundle is stale: run 'make generate ui' and commit"; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- api sql adapters); \
	  if [ -n "$$untracked" ]; then echo "untracked generated files: $$untracked"; exit 1; fi
	$(GO) mod tidy -diff

ui-deps: $(UI_WEB)/node_modules/.installed ## install the dashboard's pinned node packages (npm ci)

# npm ci only when the lockfile changed since the last install.
$(UI_WEB)/node_modules/.installed: $(UI_WEB)/package.json $(UI_WEB)/package-lock.json
	cd $(UI_WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

ui: ui-deps ## regenerate the dashboard's API client and rebuild its bundle (adapters/http/ui/dist)
	cd $(UI_WEB) && npm run --silent generate && npm run --silent build

ui-test: ui-deps ## the dashboard's unit and component tests (Vitest)
	cd $(UI_WEB) && npm test --silent

ui-screenshots: ui-deps ## run the browser flows and keep their screenshots in adapters/http/ui/screenshots
	UI_SCREENSHOTS=$(CURDIR)/adapters/http/ui/screenshots $(GO) test -count=1 -run '^TestDashboardE2E$$' -v ./cmd/relay/

lint: ## go vet, gofmt, and the dependency rule (domain imports no adapters)
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	./scripts/depcheck.sh

bench: ## reproducible relay vs bare proxy benchmark (see README "Performance")
	./scripts/bench.sh

smoke: ## Claude Code and the TypeScript SDK through the relay (needs Node.js + npm)
	./scripts/smoke.sh

migrate: build ## apply migrations (DIRECTION=up|down|version)
	./$(BIN) migrate $(or $(DIRECTION),up)

clean: ## remove build output
	rm -rf bin
