# The few commands people run. Everything happens in ./.venv, created on first use from PyPI.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve worker migrate test lint fmt bench bench-stock bench-orders bench-lifecycle bench-catalog bench-prune bench-console bench-order-pull clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: install        ## run the service (embedded PostgreSQL under ./.data unless DATABASE_URL is set)
	$(BIN)/oms-connector serve $(ARGS)

worker: install       ## run bus workers without HTTP
	$(BIN)/oms-connector worker

migrate: install
	$(BIN)/oms-connector migrate

test: install         ## the whole test suite, on a throw-away embedded PostgreSQL (or TEST_DATABASE_URL)
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install        ## JSON rules, ingest/drain, stock, order-export and lifecycle benchmarks (not catalog, prune, console: long) (bench/README.md)
	$(BIN)/python bench/json_rules.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/stock.py
	$(BIN)/python bench/orders.py
	$(BIN)/python bench/lifecycle.py

bench-stock: install  ## the stock benchmark alone
	$(BIN)/python bench/stock.py

bench-orders: install ## the order-export benchmark alone
	$(BIN)/python bench/orders.py $(ARGS)

bench-lifecycle: install ## the order-lifecycle (shipments end to end) benchmark alone
	$(BIN)/python bench/lifecycle.py $(ARGS)

bench-catalog: install ## the full catalog export benchmark alone (1M products: long)
	$(BIN)/python bench/catalog.py $(ARGS)

bench-prune: install   ## the journal prune benchmark alone (5M old messages: ~15 minutes, then until autovacuum is done, 30 at most)
	$(BIN)/python bench/prune.py $(ARGS)

bench-order-pull: install ## orders pulled from a stub Adobe Commerce against the same orders posted
	$(BIN)/python bench/order_pull.py $(ARGS)

bench-console: install ## the console's pages against their JSON API twins (5M messages, 1M orders: ~15 minutes)
	$(BIN)/python bench/console.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
