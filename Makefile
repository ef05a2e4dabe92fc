# shardflow: see README.md. `make test` is the test command (CI runs it).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

GO ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# make bench BENCHTIME=5s BENCHFLAGS='-run ^$$ -count 3'
BENCHTIME ?= 1s
BENCHFLAGS ?=

.PHONY: build test lint bench demo docs

build:
	$(GO) build -o bin/shardflow ./cmd/shardflow

# Installs the test dependencies, starts the emulators, runs
# go test -race ./... ($$GOTESTFLAGS adds flags), stops the emulators.
test:
	scripts/test.sh

lint:
	@files="$$(find . -name '*.go' -not -path './.git/*' -not -path './testenv/*' -not -path './bin/*')"; \
	out="$$( [ -z "$$files" ] || gofmt -l $$files)"; \
	if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# scripts/bench.sh, if present, owns the benchmark (it may source
# scripts/emulators.sh); otherwise the Go benchmarks run with the emulators up.
bench:
	@if [ -f scripts/bench.sh ]; then \
	  bash scripts/bench.sh; \
	else \
	  scripts/emulators.sh $(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) $(BENCHFLAGS) ./...; \
	fi

demo:
	$(GO) run ./cmd/shardflow demo

docs:
	$(GO) generate ./...
