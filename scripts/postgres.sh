#!/usr/bin/env bash
# PostgreSQL from Debian's packages, as the client-server source database of the tests and benchmarks.
# Installs it when absent, starts the packaged cluster on 127.0.0.1:5432, and makes the role and database
# named by PSTT_PG_USER / PSTT_PG_PASSWORD / PSTT_PG_DB (default pstt / pstt / pstt).
# Usage: scripts/postgres.sh start|stop|status
set -euo pipefail

PG_USER=${PSTT_PG_USER:-pstt}
PG_PASSWORD=${PSTT_PG_PASSWORD:-pstt}
PG_DB=${PSTT_PG_DB:-pstt}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install() {
  command -v pg_lsclusters >/dev/null && [ -n "$(pg_lsclusters -h 2>/dev/null)" ] && return
  echo "postgres: installing PostgreSQL from Debian's packages"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

cluster() { pg_lsclusters -h | awk 'NR==1 {print $1, $2}'; }

ready() { pg_isready -q -h 127.0.0.1 -p 5432; }

psql_admin() { as_root su postgres -c "psql -v ON_ERROR_STOP=1 -q -d postgres -c \"$1\""; }

start() {
  install
  read -r version name <<<"$(cluster)"
  if ! ready; then
    as_root pg_ctlcluster "$version" "$name" start
    for _ in $(seq 1 60); do ready && break; sleep 0.5; done
  fi
  ready || { echo "postgres: cluster $version/$name did not start" >&2; return 1; }
  if [ -z "$(as_root su postgres -c "psql -tAq -d postgres -c \"SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'\"")" ]; then
    psql_admin "CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD'"
  fi
  if [ -z "$(as_root su postgres -c "psql -tAq -d postgres -c \"SELECT 1 FROM pg_database WHERE datname = '$PG_DB'\"")" ]; then
    psql_admin "CREATE DATABASE $PG_DB OWNER $PG_USER"
  fi
  echo "postgres: running on 127.0.0.1:5432 (database $PG_DB, role $PG_USER)"
}

stop() {
  command -v pg_lsclusters >/dev/null || { echo "postgres: not installed"; return; }
  read -r version name <<<"$(cluster)"
  ready && as_root pg_ctlcluster "$version" "$name" stop
  echo "postgres: stopped"
}

status() {
  if ready; then echo "postgres: running on 127.0.0.1:5432"; else echo "postgres: not running"; return 1; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
