# The two commands of the README: `make demo` and `make test`.
# Everything they need is built or installed by the project's own scripts (tests/env/build),
# cached outside the repository under ~/.cache/serin/testenv/.

SHELL := /bin/bash
CARGO ?= cargo
# The demo keeps its environment in a fixed place so you can use it after `make demo`.
DEMO_DIR ?= /tmp/serin-demo

.PHONY: test demo demo-down env-build lint deps unit e2e bench book

## test: build the control plane if needed, lint, build the user guide, run unit and end-to-end tests
test: env-build lint book
	$(CARGO) test --lib --bins --tests --locked

## lint: formatting and clippy, warnings are errors
lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

## deps: exactly one k8s-openapi, and ring as the only rustls crypto provider
deps:
	@n=$$($(CARGO) tree --locked --prefix none -e normal,build | grep -oE '^k8s-openapi v[^ ]+' | sort -u | wc -l); \
	  [ "$$n" = 1 ] || { echo "want exactly one k8s-openapi in the dependency tree, found $$n"; exit 1; }
	@! $(CARGO) tree --locked --prefix none -e normal | grep -qE '^aws-lc-rs v' || \
	  { echo "aws-lc-rs is in the dependency tree: keep ring as the only rustls provider"; exit 1; }
	@echo "dependency tree: one k8s-openapi, one rustls provider"

## book: build the user guide (book/) into target/book with a pinned mdBook, installed once
## into ~/.cache/serin/tools/mdbook-<version> (cold install: under 3 min on 2 cores)
book:
	tests/env/book

## env-build: build/install the control-plane binaries (cached by version)
env-build:
	tests/env/build

## unit: only the tests that need no cluster
unit:
	$(CARGO) test --lib --bins --locked

## e2e: only the end-to-end tests
e2e: env-build
	$(CARGO) test --test e2e --locked

## bench: catalog throughput on a generated 5,000-manifest repository, and CPU per analysis
## tick with 100 canaries on the local control plane (release build; needs env-build)
bench: env-build
	$(CARGO) bench --locked --bench catalog
	$(CARGO) bench --locked --bench analysis_tick
	$(CARGO) bench --locked --bench webhook_latency

## demo: the GitOps loop on the local control plane: a rollout, a rollback, the ledger (ARGS=--keep keeps it running)
demo: env-build
	@echo "== building Serin (first time on a fresh machine: ~5 min for Rust, after ~10 min for the control plane)"
	$(CARGO) build --locked --bins
	SERIN_TESTENV_DIR=$(DEMO_DIR) examples/demo/run $(ARGS)

demo-down:
	SERIN_TESTENV_DIR=$(DEMO_DIR) examples/demo/stop
