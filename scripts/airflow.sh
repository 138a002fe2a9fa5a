#!/usr/bin/env bash
# A local Airflow for the demo and `make up`: SQLite metadata in .cache/airflow, this repo's dags/ and plugins/.
# Usage: scripts/airflow.sh env | up | down | run ARGS...   (`run` executes an airflow CLI command)
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

up() {
  mkdir -p "$AIRFLOW_HOME"
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "airflow: already running (pid $(cat "$PIDFILE"))"
  else
    "$ROOT/.venv/bin/python" "$ROOT/scripts/demo_db.py" "$PSTT_DEMO_DB"
    nohup airflow standalone >"$AIRFLOW_HOME/standalone.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 180); do
      curl -fs "http://127.0.0.1:$AIRFLOW__API__PORT/api/v2/monitor/health" >/dev/null 2>&1 && break
      sleep 1
    done
  fi
  local passwords=$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
  echo "Airflow UI: http://127.0.0.1:$AIRFLOW__API__PORT (user admin, password in $passwords)"
  [ -f "$passwords" ] && cat "$passwords" && echo
  echo "PSTT dashboard: http://127.0.0.1:$AIRFLOW__API__PORT/pstt/  -  stop with: make down"
}

down() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    kill -- -"$(ps -o pgid= "$(cat "$PIDFILE")" | tr -d ' ')" 2>/dev/null || kill "$(cat "$PIDFILE")"
    echo "airflow: stopped"
  else
    echo "airflow: not running"
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  env) while IFS='=' read -r name value; do printf 'export %s=%q\n' "$name" "$value"; done < <(env | grep -E '^(AIRFLOW|PSTT)') ;;
  up) up ;;
  down) down ;;
  run) shift; exec airflow "$@" ;;
  *) echo "usage: $0 env|up|down|run ARGS..." >&2; exit 2 ;;
esac
