# Two commands set everything up: `make serve` and `make test`.
# Both create .venv and install livedata with the exact versions of constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test check bench lock clean

serve: $(VENV)/installed
	$(BIN)/livedata serve

test: $(VENV)/installed
	$(BIN)/pytest

check: $(VENV)/installed
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/installed
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python bench/service_overhead.py

# Refresh constraints.txt after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/livedata-lock && $(PYTHON) -m venv /tmp/livedata-lock
	/tmp/livedata-lock/bin/pip install -q ".[dev,bench]"
	/tmp/livedata-lock/bin/pip freeze --exclude livedata > constraints.txt

$(VENV)/installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV)
