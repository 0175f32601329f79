# riskcast: every target creates the virtual environment it needs on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export RISKCAST_HOME ?= $(CURDIR)/var

.PHONY: demo test lint typecheck check bench clean lock

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv==0.13.9
	$(BIN)/uv pip sync --python $(BIN)/python --quiet requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python experiments/demo.py

test: $(STAMP)
	tests/e2e/ensure_chromium.sh
	$(BIN)/ruff check .
	$(BIN)/mypy riskcast features training serving fairness experiments
	$(BIN)/pytest -n 2 tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy riskcast features training serving fairness experiments

bench: $(STAMP)
	$(BIN)/python experiments/bench_features.py --persons 1000000

# Re-resolve the pins: the development lock, then the image's runtime lock within its pins.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 -c requirements.lock \
		-o requirements-runtime.lock

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
