# chatstack-status — the one entry point. `make help` lists the targets.
CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
BIN := target/release/chatstack-status
PYTHON ?= python3

.PHONY: help build release run test unit test-flask test-openapi test-deb test-systemd lint forbid deps deb install uninstall bench soak fuzz clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## debug build
	$(CARGO) build --locked

release: ## optimised binary in target/release (laid out by link-order.txt; keeps its symbol table, the .deb strips)
	$(CARGO) build --locked --release

run: release ## the daemon on config/demo.yml: open http://127.0.0.1:8095/
	$(BIN) run -c config/demo.yml

deps: ## install the Debian packages the tests use (no-op when present)
	sh scripts/test-deps.sh

test: deps lint forbid unit test-flask test-openapi test-deb test-systemd ## everything: lint, unit + integration + browser tests, the Flask blueprint, the OpenAPI fuzz, the .deb, and the .deb and the why under a real systemd
	@echo "make test: all passed"

unit: ## cargo test: unit, integration (real binary, loopback servers) and browser tests
	$(CARGO) test --locked --all-targets

test-flask: build ## the Flask blueprint: pytest (venv in target/flask-venv) vs a real Flask app and the agent
	PYTHON=$(PYTHON) CHATSTACK_STATUS_BIN=$(CURDIR)/target/debug/chatstack-status bash tests/flask/run.sh

test-openapi: build ## the OpenAPI document: openapi-spec-validator, schemathesis vs live run/serve (venv in target/openapi-venv; < 3 min)
	PYTHON=$(PYTHON) CHATSTACK_STATUS_BIN=$(CURDIR)/target/debug/chatstack-status bash tests/openapi/run.sh

test-deb: release ## build the .deb, lintian, install/upgrade/purge it, install.sh (root)
	bash tests/packaging/test-deb.sh $(BIN)

test-systemd: release ## the .deb and the why (exit, journal, crash loop, OOM where cgroup v2 allows) under a real systemd in systemd-nspawn (root; the ~270 MB rootfs is built once)
	bash tests/packaging/test-systemd.sh $(BIN)

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

forbid: ## no debugging leftovers in src/
	@! grep -rnE 'dbg!|todo!|unimplemented!' src/ || (echo "forbidden macro in src/"; exit 1)

deb: release ## target/deb/chatstack-status_<version>_<arch>.deb
	bash packaging/build-deb.sh $(BIN) target/deb

install: release ## install under $(DESTDIR)$(PREFIX) without dpkg
	BINARY=$(BIN) DESTDIR=$(DESTDIR) bash packaging/install.sh $(PREFIX)

uninstall: ## undo `make install`
	DESTDIR=$(DESTDIR) bash packaging/install.sh --uninstall $(PREFIX)

bench: release ## speed, scale and footprint vs references; writes docs/BENCHMARKS.md
	bash bench/run.sh

soak: release ## ~3 min: 2,000 cycles with flipping targets and reloads
	bash bench/soak.sh

fuzz: ## long property-based runs of every parser
	PROPTEST_CASES=20000 $(CARGO) test --locked --release --lib fuzz -- --nocapture

clean: ## remove build output
	$(CARGO) clean
