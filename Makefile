# Two entry points on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Installed code is byte-compiled, as pip does, even where PYTHONDONTWRITEBYTECODE is set.
export UV_COMPILE_BYTECODE := 1

.PHONY: run test test-all lint bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	$(VENV)/bin/python -m compileall -q src
	touch $@

run: $(VENV)/.synced
	$(VENV)/bin/pjai serve

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

test-all: lint
	$(VENV)/bin/pytest -m ""

bench: $(VENV)/.synced
	$(VENV)/bin/python -m compileall -q src
	$(VENV)/bin/pjai bench store
	$(VENV)/bin/pjai bench hybrid
	$(VENV)/bin/pjai bench sync

clean:
	rm -rf $(TOOLS) $(VENV) .pytest_cache .mypy_cache .ruff_cache
