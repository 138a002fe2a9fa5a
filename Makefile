# The two commands: `make demo` and `make test`. Everything they need is installed on first use and reused after.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
AIRFLOW := scripts/airflow.sh

.DEFAULT_GOAL := help
.PHONY: help demo test unit lint deptry typecheck docs up up-cluster down kafka-up kafka-down postgres-up bench venv

# This list: each target with the comment above it.
help:
	@awk '/^# /{doc = doc (doc ? " " : "") substr($$0, 3); next} /^[a-z][a-z-]*:/ && doc {sub(/:.*/, ""); \
		printf "make %-12s %s\n", $$0, doc} {doc = ""}' $(firstword $(MAKEFILE_LIST))

# .venv with the package (editable) and its test and bench extras; redone when pyproject.toml changes.
venv: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install -q --python $(PY) -e '.[test,bench]'
	touch $@

# The local single-node Kafka broker (127.0.0.1:9092, SASL_SSL on 9093), started when not running.
kafka-up:
	scripts/kafka.sh start

# Stops the local Kafka broker.
kafka-down:
	scripts/kafka.sh stop

# The local PostgreSQL (installed from Debian's packages when absent), started when not running.
postgres-up:
	scripts/postgres.sh start

# ruff format --check, ruff check, make deptry and make typecheck (part of make test).
lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(MAKE) --no-print-directory deptry
	$(MAKE) --no-print-directory typecheck

# Every import declared: package, DAGs and scripts among the runtime dependencies, tests/ and benchmarks/ in any.
deptry:
	$(VENV)/bin/deptry .
	$(VENV)/bin/deptry tests tests/*/ benchmarks --exclude '\.venv' --extend-exclude '\.cache' --ignore DEP002,DEP004

# mypy over pstt_provider/ (settings in pyproject.toml; part of make lint).
typecheck: venv
	$(VENV)/bin/mypy

# Rewrites the parts of docs/ generated from the code (scripts/gen_docs.py; make test checks they are current).
docs: venv
	$(PY) scripts/gen_docs.py

# The whole test suite, after make lint, with the broker and PostgreSQL it needs (what CI runs).
# Three workers, a test file each (the tests mostly wait on brokers, servers and subprocesses); then, alone, the
# tests whose figures depend on the machine's load.
test: venv kafka-up postgres-up lint
	$(PY) -m pytest -q -n 3 --dist loadfile -m "not serial"
	$(PY) -m pytest -q -m serial

# The service-free tier (no broker, PostgreSQL or Airflow DB needed), in under a minute.
unit: venv
	$(PY) -m pytest -q tests/unit tests/property

# Sets everything up and runs the demo job end to end, printing messages read back from Kafka.
demo: venv kafka-up
	$(PY) scripts/demo.py

# Airflow (standalone) with the jobs in dags/jobs/ loaded, UI on http://127.0.0.1:8080.
up: venv kafka-up
	$(AIRFLOW) up

# Airflow scaled out: CeleryExecutor (Redis), PostgreSQL metadata, two workers, the Kafka cluster; UI on :8090.
up-cluster: venv
	$(AIRFLOW) up-cluster

# Stops what make up or make up-cluster started.
down:
	$(AIRFLOW) down

# The benchmarks in benchmarks/, against the local broker, PostgreSQL and Schema Registry.
bench: venv kafka-up postgres-up
	scripts/schema-registry.sh start
	$(PY) benchmarks/run.py

.PHONY: bench-peers
# Builds the peer tools make bench compares pstt with into .cache/peers (Kafka Connect with Aiven's JDBC source, Benthos).
bench-peers:
	benchmarks/peers/connect_jdbc.sh
	benchmarks/peers/benthos.sh
