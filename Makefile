# The README's two commands are `make demo` and `make test`; both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench serve clean conformance

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# Optional: the official Smart Data Models contexts (only BURGAS_NGSI_CONTEXT=official uses them),
	# from ../shared when it is there, else downloaded once into ~/.cache/burgas-adapter. Offline it
	# warns and goes on: the demo, sync and broker serve need neither (the core context is package data).
	$(BIN)/python -m adapter.reference
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/burgas-adapter demo

serve: $(STAMP)
	$(BIN)/burgas-adapter serve

# What CI runs (.ci/run): the linters, then every test, in two worker processes (TEST_WORKERS=0: one
# process). Most of the suite's wall time is waiting on servers and child processes, so two workers
# halve it on 2 cores; --dist loadfile keeps a file's tests (and its module fixtures) in one worker.
TEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The unit tests only (no sockets, no servers): under a minute.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not integration"

# The ETSI NGSI-LD conformance suite (../shared/conformance) against the embedded broker, a fresh one
# per group; prints the table. CONFORMANCE_GROUPS narrows it (e.g. ContextInformation/Provision/Entities),
# OUT keeps the results (failures.tsv: each failure with its last request and response).
CONFORMANCE ?= ../shared/conformance
CONFORMANCE_GROUPS ?=
OUT ?= /tmp/ngsi-ld-conformance
conformance: $(STAMP)
	@test -x $(CONFORMANCE)/run.sh || { echo "no ETSI suite at $(CONFORMANCE)"; exit 2; }
	OUT=$(OUT) bash $(CONFORMANCE)/run.sh -c '$(abspath $(BIN))/python -m ngsild_broker --port {port} --memory --contexts-dir $(abspath $(CONFORMANCE))/contexts' $(CONFORMANCE_GROUPS)

bench: $(STAMP)
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) .state

# --- Orion-LD stack and the browser of the map tests ----------------------------------------------
.PHONY: up down browser
COMPOSE ?= docker compose

# Builds the adapter image and returns once every service is healthy.
up:
	$(COMPOSE) up --detach --build --wait

down:
	$(COMPOSE) down

# Debian's Chromium for tests/test_service_map.py (skipped without it, except in CI). Needs root or sudo.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
	@command -v chromium
