# Gateway: `make run` serves a demo on http://127.0.0.1:8000, `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# Serving needs only the runtime packages; the test tools come with `make test` / `make lint`.
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# Extra options for `manage.py demo`, e.g. `make run DEMO=--new-key` for a new demo key secret.
DEMO ?=

.PHONY: install install-dev run test lint format serve-production migrate clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py demo $(DEMO)
	$(PY) manage.py runserver --noreload 127.0.0.1:8000

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install-dev lint
	GATEWAY_DATA_DIR=$$(mktemp -d) $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest -n 2 --dist loadfile

serve-production: migrate
	$(PY) manage.py collectstatic --noinput
	$(VENV)/bin/gunicorn -c gatewaysite/gunicorn.py gatewaysite.wsgi:application

clean:
	rm -rf $(VENV) var
