# School instant messaging. `make run` starts everything; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
PYTEST  = $(PY) -m pytest

.PHONY: install setup run test test-unit test-integration test-e2e test-faults bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: install
	$(PY) -m deploy.local setup

run: install
	$(PY) -m deploy.local run --realtime $${REALTIME_PROCESSES:-2}

test: install
	$(PYTEST) tests/unit tests/integration tests/e2e tests/faults

test-unit: install
	$(PYTEST) tests/unit

test-integration: install
	$(PYTEST) tests/integration

test-e2e: install
	$(PYTEST) tests/e2e

# Broker, database and process faults under load, on a RabbitMQ node and a PostgreSQL cluster of their own.
test-faults: install
	$(PYTEST) tests/faults

bench: install
	$(PY) -m bench.latency
	$(PY) -m bench.conversations
	$(PY) -m bench.realtime
	$(PY) -m bench.attachments
	$(PY) -m bench.moderation
	$(PY) -m bench.mass
	$(PY) -m bench.synclog
	$(PY) -m bench.schoolday

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) var bench/results/*.json .pytest_cache
