# The two commands: `make demo` and `make test`. Everything they need is installed on first use and reused after.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
AIRFLOW := scripts/airflow.sh

.PHONY: demo test lint up down kafka-up kafka-down postgres-up bench venv

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install -q --python $(PY) -e '.[test]'
	touch $@

kafka-up:
	scripts/kafka.sh start

kafka-down:
	scripts/kafka.sh stop

postgres-up:
	scripts/postgres.sh start

lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

test: venv kafka-up postgres-up lint
	$(PY) -m pytest -q -p no:cacheprovider

demo: venv kafka-up
	$(PY) scripts/demo.py

up: venv kafka-up
	$(AIRFLOW) up

down:
	$(AIRFLOW) down

bench: venv kafka-up postgres-up
	$(PY) benchmarks/run.py
