# Gateway: `make run` serves a demo on http://127.0.0.1:8000, `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint format serve-production migrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py demo
	$(PY) manage.py runserver --noreload 127.0.0.1:8000

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install lint
	GATEWAY_DATA_DIR=$$(mktemp -d) $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest -n 2 --dist loadfile

serve-production: migrate
	$(PY) manage.py collectstatic --noinput
	$(VENV)/bin/gunicorn -c gatewaysite/gunicorn.py gatewaysite.wsgi:application

clean:
	rm -rf $(VENV) var
