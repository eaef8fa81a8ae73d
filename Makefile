# Two commands matter: `make up` starts the whole system, `make test` runs every test.
# Each installs what it needs on first run: a Python virtual environment and the npm packages.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_BIN := $(CURDIR)/node_modules/.bin
SOLC_VERSION := 0.8.28

# Ape and py-solc-x find the solc-js command line here (see tools/solc-js/solc.js).
export SOLCX_BINARY_PATH := $(CURDIR)/.solcx
export PATH := $(NODE_BIN):$(CURDIR)/$(BIN):$(PATH)
export PYTHONPATH := $(CURDIR)/backend

APE_NETWORK := ethereum:local:foundry

.PHONY: install compile up test test-contracts test-python slither gas bench reliability scenario lint clean

install: $(VENV)/.installed node_modules/.installed $(SOLCX_BINARY_PATH)/solc-v$(SOLC_VERSION)

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SOLCX_BINARY_PATH)/solc-v$(SOLC_VERSION): tools/solc-js/solc.js node_modules/.installed
	mkdir -p $(SOLCX_BINARY_PATH)
	ln -sf ../tools/solc-js/solc.js $@

compile: install
	$(BIN)/ape compile

up: compile
	tools/up.sh

# The contract tests and the Python tests use separate Anvil nodes, so they run side by side;
# each one's output is printed as a block when it finishes.
test: compile slither
	$(MAKE) --no-print-directory -j2 --output-sync=target test-contracts test-python

test-contracts:
	tools/with-anvil.sh $(BIN)/ape test tests/contracts --network $(APE_NETWORK) -q -p no:cacheprovider

test-python:
	$(BIN)/python -m pytest tests/tools tests/reference tests/bridge tests/integration tests/scenarios tests/reliability -q -p no:cacheprovider

# Static analysis of the deployable contracts; fails on any medium or high finding.
# Accepted findings are explained in docs/static-analysis.md.
SLITHER_TARGETS := contracts/CreditFacility.sol contracts/FundFlowRules.sol contracts/SettlementToken.sol

slither: install
	@for target in $(SLITHER_TARGETS); do \
		$(BIN)/slither $$target --config-file slither.config.json --fail-medium 2>&1 | tail -n 1 || exit 1; \
	done

gas: compile
	$(BIN)/ape run measure_gas --network $(APE_NETWORK)

# Every benchmark, then bench/results.json and docs/benchmarks.md (about 6 minutes here).
# History on PostgreSQL runs when LEDGER_BENCH_POSTGRES_URL or LEDGER_TEST_POSTGRES_URL names a server.
bench: gas
	$(BIN)/python bench/bridge_throughput.py
	$(BIN)/python bench/indexer_backfill.py
	$(BIN)/python bench/history_queries.py --postgres-url "$${LEDGER_BENCH_POSTGRES_URL:-$${LEDGER_TEST_POSTGRES_URL:-}}"
	$(BIN)/python bench/render.py

# Long invariant runs, Slither, API fuzzing, security checks, chaos under load and several
# replicas, bounded to about 30 minutes; ends with the line "reliability: lost=N ...".
reliability: compile
	tools/reliability.sh

# Replay one scenario on a fresh local chain and bridge:
#   make scenario FILE=scenarios/renewal.yaml REPORT=.run/renewal.json
scenario: compile
	@test -n "$(FILE)" -a -n "$(REPORT)" || { echo "usage: make scenario FILE=<scenario.yaml> REPORT=<report.json>" >&2; exit 2; }
	$(BIN)/ledger-bridge scenario run "$(FILE)" --report "$(REPORT)"

lint: install
	$(BIN)/ruff check backend tests scripts

clean:
	rm -rf .build contracts/.cache .run
