# Developer shortcuts. Every target is a plain command you can also run by hand.
# buf is pinned in package.json (npm ci installs it into node_modules).

BUF := npx --no-install buf

.PHONY: help tools generate check-generate test lint breaking bench

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

tools: ## install the pinned buf CLI (npm ci)
	npm ci

generate: ## regenerate gen/ from proto/
	$(BUF) generate

check-generate: generate ## fail if gen/ is not what proto/ generates
	git diff --exit-code -- gen/
	@test -z "$$(git status --porcelain -- gen/)" || { git status --porcelain -- gen/; exit 1; }

test: ## run all tests with the race detector (set KV_TEST_POSTGRES_DSN to include Postgres)
	go test -race -count=1 ./...

lint: ## gofmt, go vet, staticcheck and buf lint
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...
	go tool staticcheck ./...
	$(BUF) lint

breaking: ## check proto/ against main for breaking changes
	$(BUF) breaking --against '.git#branch=main'

bench: ## run benchmarks
	go test -run='^$$' -bench=. -benchmem ./...
