# The README's commands. Each creates or reuses .venv and installs the pinned
# dependencies itself, so a fresh machine with Python 3.11 needs nothing else.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=

export RAY_USAGE_STATS_ENABLED = 0
export PYTHONDONTWRITEBYTECODE = 1

.PHONY: demo test unit integration bench lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m jobs.demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit platform $(ARGS)

integration: $(STAMP)
	$(PY) -m pytest -q tests/integration $(ARGS)

bench: $(STAMP)
	@mkdir -p benchmarks/results
	@set -e; for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b; done

lint: $(STAMP)
	$(VENV)/bin/ruff check platform deployments jobs benchmarks tests
	$(VENV)/bin/mypy platform/autopilot deployments jobs

clean:
	rm -rf $(VENV) .autopilot benchmarks/results
