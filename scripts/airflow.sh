#!/usr/bin/env bash
# A local Airflow for the demo and `make up`: SQLite metadata in .cache/airflow, this repo's dags/ and plugins/.
# `up-cluster` runs the scaled-out form instead (docs/scaling.md): CeleryExecutor with Redis as the Celery broker
# (scripts/redis.sh), PostgreSQL as the metadata DB and result backend (a role and database of its own in the local
# PostgreSQL, made by scripts/postgres.sh), the three-broker Kafka cluster behind kafka_default, and one process each
# for the scheduler, the DAG processor, the API server, the triggerer and two Celery workers (worker1, worker2).
# Its settings move with the environment, so a test runs a deployment of its own beside a developer's:
#   PSTT_CLUSTER_HOME   its AIRFLOW_HOME (default .cache/airflow-cluster): logs, pid files, secrets
#   PSTT_CLUSTER_DB     its database and role in PostgreSQL (default airflow_cluster, password the same)
#   PSTT_CLUSTER_PORT   its API server and UI (default 8090)
#   PSTT_REDIS_PORT     its Redis (default 6379; PSTT_REDIS_DIR moves its files, see scripts/redis.sh)
# and any AIRFLOW__SECTION__KEY set by the caller reaches every process (e.g. the heartbeat timeout).
# `down` stops whichever of the two runs.
# Usage: scripts/airflow.sh env | env-cluster | up | up-cluster | down | run ARGS...
#   (`run` executes an airflow CLI command; `eval "$(scripts/airflow.sh env-cluster)"` points a shell at the cluster)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export AIRFLOW_HOME=${AIRFLOW_HOME:-$ROOT/.cache/airflow}
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__API__PORT=${AIRFLOW__API__PORT:-8080}
export PSTT_JOBS_DIR=${PSTT_JOBS_DIR:-$ROOT/dags/jobs}
export PSTT_QUERIES_DIR=${PSTT_QUERIES_DIR:-$ROOT/queries}
export PSTT_DEMO_DB=${PSTT_DEMO_DB:-$ROOT/.cache/demo/traces.db}
export AIRFLOW_CONN_KAFKA_DEFAULT=${AIRFLOW_CONN_KAFKA_DEFAULT:-'{"conn_type": "kafka", "extra": {"bootstrap.servers": "127.0.0.1:9092"}}'}
export AIRFLOW_CONN_PSTT_DEMO_SQLITE=${AIRFLOW_CONN_PSTT_DEMO_SQLITE:-"{\"conn_type\": \"sqlite\", \"host\": \"$PSTT_DEMO_DB\"}"}
PATH=$ROOT/.venv/bin:$PATH
PIDFILE=$AIRFLOW_HOME/standalone.pid

CLUSTER_HOME=${PSTT_CLUSTER_HOME:-$ROOT/.cache/airflow-cluster}
CLUSTER_DB=${PSTT_CLUSTER_DB:-airflow_cluster}
CLUSTER_PORT=${PSTT_CLUSTER_PORT:-8090}
CLUSTER_PIDS=$CLUSTER_HOME/pids
REDIS_PORT=${PSTT_REDIS_PORT:-6379}
CLUSTER_PROCESSES="api-server scheduler dag-processor triggerer worker1 worker2"

wait_healthy() {
  local port=$1 seconds=$2
  for _ in $(seq 1 "$seconds"); do
    curl -fs "http://127.0.0.1:$port/api/v2/monitor/health" >/dev/null 2>&1 && return
    sleep 1
  done
  return 1
}

print_login() {
  local home=$1 port=$2 passwords=$1/simple_auth_manager_passwords.json.generated
  echo "Airflow UI: http://127.0.0.1:$port (user admin, password in $passwords)"
  [ -f "$passwords" ] && cat "$passwords" && echo
  echo "PSTT dashboard: http://127.0.0.1:$port/pstt/  -  stop with: make down"
}

up() {
  mkdir -p "$AIRFLOW_HOME"
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "airflow: already running (pid $(cat "$PIDFILE"))"
  else
    "$ROOT/.venv/bin/python" "$ROOT/scripts/demo_db.py" "$PSTT_DEMO_DB"
    setsid nohup airflow standalone >"$AIRFLOW_HOME/standalone.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    wait_healthy "$AIRFLOW__API__PORT" 180 || true
  fi
  print_login "$AIRFLOW_HOME" "$AIRFLOW__API__PORT"
}

# The settings every process of the Celery deployment shares. The JWT secret (tokens the API server issues to
# tasks, checked by the execution API) and the API secret key must be the same in all of them: made once per home.
cluster_env() {
  mkdir -p "$CLUSTER_HOME/config" "$CLUSTER_PIDS"
  local secrets=$CLUSTER_HOME/secrets.env
  if [ ! -f "$secrets" ]; then
    (umask 077 && printf 'JWT_SECRET=%s\nSECRET_KEY=%s\n' "$(openssl rand -hex 32)" "$(openssl rand -hex 32)" >"$secrets")
  fi
  # shellcheck disable=SC1090
  . "$secrets"
  # Both workers share this machine's hostname; each task instance records the worker that ran it instead.
  cat >"$CLUSTER_HOME/config/cluster_hostname.py" <<'PY'
"""[core] hostname_callable of `make up-cluster`: two Celery workers on one machine, told apart in the UI."""

import os
import socket


def hostname() -> str:
    return os.environ.get("PSTT_WORKER_NAME") or socket.getfqdn()
PY
  local db_url="postgresql://$CLUSTER_DB:$CLUSTER_DB@127.0.0.1:5432/$CLUSTER_DB"
  local url="http://127.0.0.1:$CLUSTER_PORT"
  export AIRFLOW_HOME=$CLUSTER_HOME
  export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=$db_url
  export AIRFLOW__CELERY__BROKER_URL=redis://127.0.0.1:$REDIS_PORT/0
  export AIRFLOW__CELERY__RESULT_BACKEND=db+$db_url
  export AIRFLOW__CELERY__WORKER_CONCURRENCY=${AIRFLOW__CELERY__WORKER_CONCURRENCY:-4}
  export AIRFLOW__API__HOST=127.0.0.1
  export AIRFLOW__API__PORT=$CLUSTER_PORT
  export AIRFLOW__API__BASE_URL=$url
  export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=$url/execution/
  export AIRFLOW__API_AUTH__JWT_SECRET=$JWT_SECRET
  export AIRFLOW__API__SECRET_KEY=$SECRET_KEY
  export AIRFLOW__CORE__HOSTNAME_CALLABLE=cluster_hostname.hostname
  export PYTHONPATH=$CLUSTER_HOME/config${PYTHONPATH:+:$PYTHONPATH}
  AIRFLOW_CONN_KAFKA_DEFAULT=$(printf '{"conn_type": "kafka", "extra": {"bootstrap.servers": "%s"}}' \
    "$("$ROOT/scripts/kafka.sh" cluster bootstrap)")
  export AIRFLOW_CONN_KAFKA_DEFAULT
}

cluster_running() { [ -f "$CLUSTER_PIDS/$1.pid" ] && kill -0 "$(cat "$CLUSTER_PIDS/$1.pid")" 2>/dev/null; }

# Each process in a session of its own, so `down` ends it with the task processes it started.
launch() {
  local name=$1
  shift
  cluster_running "$name" && return
  setsid nohup "$@" >"$CLUSTER_HOME/$name.log" 2>&1 </dev/null &
  echo $! >"$CLUSTER_PIDS/$name.pid"
}

up_cluster() {
  local started=$SECONDS
  "$ROOT/scripts/kafka.sh" cluster start
  "$ROOT/scripts/redis.sh" start
  PSTT_PG_USER=$CLUSTER_DB PSTT_PG_PASSWORD=$CLUSTER_DB PSTT_PG_DB=$CLUSTER_DB "$ROOT/scripts/postgres.sh" start
  cluster_env
  "$ROOT/.venv/bin/python" "$ROOT/scripts/demo_db.py" "$PSTT_DEMO_DB"
  cluster_running scheduler || airflow db migrate >"$CLUSTER_HOME/migrate.log" 2>&1 ||
    { echo "airflow: db migrate failed, see $CLUSTER_HOME/migrate.log" >&2; return 1; }
  launch api-server airflow api-server
  launch scheduler airflow scheduler
  launch dag-processor airflow dag-processor
  launch triggerer airflow triggerer --skip-serve-logs  # logs are local files: no log-server port to clash
  local n
  for n in 1 2; do
    launch "worker$n" env PSTT_WORKER_NAME="worker$n" \
      airflow celery worker --celery-hostname "worker$n@%h" --skip-serve-logs
  done
  wait_healthy "$CLUSTER_PORT" 240 ||
    { echo "airflow: the API server did not answer, see $CLUSTER_HOME/api-server.log" >&2; return 1; }
  echo "airflow cluster: $CLUSTER_PROCESSES running ($((SECONDS - started)) s), logs in $CLUSTER_HOME"
  print_login "$CLUSTER_HOME" "$CLUSTER_PORT"
}

# TERM to the process group of a process started with setsid (so it is the group's leader, and the group holds
# what it started, nothing of the caller's), KILL to what is left after 60 s (a Celery worker waits for its tasks).
stop_group() {
  local pid=$1
  kill -TERM -- -"$pid" 2>/dev/null || return 0
  for _ in $(seq 1 120); do
    kill -0 -- -"$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL -- -"$pid" 2>/dev/null || true
}

down_cluster() {
  local name pid stopped=""
  for name in $CLUSTER_PROCESSES; do
    if cluster_running "$name"; then
      pid=$(cat "$CLUSTER_PIDS/$name.pid")
      stop_group "$pid" &
      stopped="$stopped $name"
    fi
    rm -f "$CLUSTER_PIDS/$name.pid"
  done
  wait
  if [ -n "$stopped" ]; then
    "$ROOT/scripts/redis.sh" stop
    echo "airflow cluster: stopped$stopped"
  else
    echo "airflow cluster: not running"
  fi
}

down() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    stop_group "$(cat "$PIDFILE")"
    echo "airflow: stopped"
  else
    echo "airflow: not running"
  fi
  rm -f "$PIDFILE"
  down_cluster
}

print_env() { while IFS='=' read -r name value; do printf 'export %s=%q\n' "$name" "$value"; done < <(env | grep -E '^(AIRFLOW|PSTT|PYTHONPATH)'); }

case "${1:-}" in
  env) print_env ;;
  env-cluster) cluster_env && print_env ;;
  up) up ;;
  up-cluster) up_cluster ;;
  down) down ;;
  run) shift; exec airflow "$@" ;;
  *) echo "usage: $0 env|env-cluster|up|up-cluster|down|run ARGS..." >&2; exit 2 ;;
esac
