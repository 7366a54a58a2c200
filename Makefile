# One entry point for set-up and every routine task. Targets create the virtual environment
# themselves from the lock file, so a fresh clone needs only python3 (3.11) and network access
# to the package registry.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV_DIR := .uv
UV := $(UV_DIR)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := --extra local --extra infra --extra dev --extra bench
STAMP := $(VENV)/.synced-$(UV_VERSION)

# jsii (the CDK's runtime) prints a large banner on node 20 without this.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: demo test lint format bench synth clean

$(UV):
	$(PYTHON) -m venv $(UV_DIR)
	$(UV_DIR)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen $(EXTRAS)
	touch $@

demo: $(STAMP)
	$(BIN)/freight demo

# The quality gate, locally and in CI: lint, types, then every test.
test: lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m bench.run

# Every stack of every stage into cdk.out/, offline and without credentials.
synth: $(STAMP)
	CDK_OUTDIR=cdk.out $(BIN)/python -m cdk_app.app

clean:
	rm -rf $(VENV) $(UV_DIR) work .pytest_cache .mypy_cache .ruff_cache
