# Two commands for a fresh machine: `make run` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: run test dev bench lint db-start db-stop db-status sim-stop install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[embedded,dev,k8s]'
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: instance/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp instance/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## make run: install, start the embedded services, replicate the demo feeds end to end
run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/mls-assets db start
	$(BIN)/mls-assets sim start
	$(BIN)/mls-assets run

## make test: the whole test suite against real servers started by the tests, 1.5 workers per core (the tests wait on
## servers and subprocesses much of the time: on 2 cores 3 workers finished before 2), idle workers take
## queued tests from busy ones
PYTEST_WORKERS ?= $(shell python3 -c 'import os; print(max(2, (os.cpu_count() or 2) * 3 // 2))')
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

## make dev: the Dagster UI and daemon (http://127.0.0.1:3000) and the leads API (http://127.0.0.1:8000/docs);
## TERM or INT (Ctrl-C, or to make in the background) stops both, with every process they started
dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/mls-assets db start
	$(BIN)/mls-assets sim start
	$(BIN)/mls-assets feeds sync
	exec $(BIN)/mls-assets dev

## make bench: benchmarks (not part of make test)
bench: $(STAMP)
	$(BIN)/python -m pytest -m bench -s --timeout=0 -p no:logging --show-capture=no mls_assets_tests/bench $(PYTEST_ARGS)

## make lint: ruff's linter and its formatter (checked, not applied: `ruff format` applies it) over the package and tests
lint: $(STAMP)
	$(BIN)/ruff check mls_assets mls_assets_tests
	$(BIN)/ruff format --check mls_assets mls_assets_tests

db-start: $(STAMP)
	$(BIN)/mls-assets db start
db-stop: $(STAMP)
	$(BIN)/mls-assets db stop
db-status: $(STAMP)
	$(BIN)/mls-assets db status
sim-stop: $(STAMP)
	$(BIN)/mls-assets sim stop

clean:
	-$(BIN)/mls-assets sim stop
	-$(BIN)/mls-assets db stop
	rm -rf $(VENV) .state .dagster_home .pytest_cache
