# accesswatch — `make help` lists the targets.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-fast lint fmt bench evaluate contract clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/accesswatch: pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[test,rocksdb]'
	@touch $@

venv: $(BIN)/accesswatch  ## create .venv and install accesswatch with its test extras

demo: venv  ## run the Coupang-style demo on the embedded broker
	$(BIN)/accesswatch demo

test:  ## install everything the tests need (venv, Prometheus, Alertmanager, Kafka) and run them all
	./scripts/test.sh

test-fast: venv  ## unit + scenario tests only (no brokers, no servers)
	$(BIN)/pytest -q -m "not broker and not kafka and not prom"

lint: venv  ## ruff lint; mypy: --strict on detectors/, the default checks on streams/ (pyproject.toml)
	$(BIN)/ruff check detectors simulation streams local tests bench scripts
	$(BIN)/mypy

fmt: venv  ## ruff format
	$(BIN)/ruff format detectors simulation streams local tests bench

bench: venv  ## engine benchmark: replay events/s and state bytes per entity
	$(BIN)/python bench/bench_replay.py

evaluate: venv  ## detection results on simulated attacks (several seeds)
	$(BIN)/accesswatch evaluate

contract:  ## regenerate docs/contract.md from the design and docs/contract-notes.md
	$(PY) scripts/gen_contract.py

clean:  ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
