# kpimon: `make demo` and `make test` work on a fresh machine (they install what they need).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DURATION ?=
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: setup demo test test-fast bench lint clean

$(STAMP): pyproject.toml scripts/install-system.sh
	PYTHON=$(PYTHON) ./scripts/install-system.sh python
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(STAMP)

# the tests' own packages and servers, on top of what the demo needs
$(TEST_STAMP): $(STAMP)
	./scripts/install-system.sh test
	$(BIN)/pip install -q -e '.[test]'
	touch $(TEST_STAMP)

setup: $(STAMP)

demo: setup  ## broker + worker + simulator with an incident; DURATION=90 for a bounded run
	$(BIN)/kpimon demo $(if $(DURATION),--duration $(DURATION),)

test: $(TEST_STAMP)  ## the whole suite, real broker/Redis/Prometheus/SMTP started by the tests
	$(BIN)/lint-imports
	$(BIN)/ruff check kpimon catalog streams detectors alerting grafana tests bench
	$(BIN)/mypy --strict kpimon catalog streams detectors alerting grafana tests
	$(BIN)/pytest -q -n 2 --dist loadgroup  # two workers; one unit per module (see tests/conftest.py)

bench: setup
	$(BIN)/python bench/pipeline_bench.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check kpimon catalog streams detectors alerting grafana tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
