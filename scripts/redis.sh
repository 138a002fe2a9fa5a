#!/usr/bin/env bash
# Redis from Debian's packages, as the Celery broker of `make up-cluster`. Installs redis-server when absent and
# runs it as a daemon of this repo's own on 127.0.0.1:$PSTT_REDIS_PORT (default 6379), data, pid file and log in
# $PSTT_REDIS_DIR (default .cache/redis; not the packaged service's /var/lib/redis, so it needs no init system).
# A test runs its own beside a developer's with both moved.
# Usage: scripts/redis.sh start|stop|status
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PORT=${PSTT_REDIS_PORT:-6379}
DIR=${PSTT_REDIS_DIR:-$ROOT/.cache/redis}
PIDFILE=$DIR/redis-$PORT.pid

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install() {
  command -v redis-server >/dev/null && return
  echo "redis: installing redis-server from Debian's packages"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}

ready() { command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = PONG ]; }

start() {
  install
  if ! ready; then
    mkdir -p "$DIR"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --dir "$DIR" --dbfilename "dump-$PORT.rdb" \
      --pidfile "$PIDFILE" --logfile "$DIR/redis-$PORT.log" --save 60 1 --protected-mode yes
    for _ in $(seq 1 60); do ready && break; sleep 0.25; done
  fi
  ready || { echo "redis: did not start on 127.0.0.1:$PORT, see $DIR/redis-$PORT.log" >&2; return 1; }
  echo "redis: running on 127.0.0.1:$PORT"
}

stop() {
  if ready; then
    redis-cli -h 127.0.0.1 -p "$PORT" shutdown >/dev/null 2>&1 || true
    for _ in $(seq 1 40); do ready || break; sleep 0.25; done
  fi
  rm -f "$PIDFILE"
  echo "redis: stopped"
}

status() {
  if ready; then echo "redis: running on 127.0.0.1:$PORT"; else echo "redis: not running"; return 1; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
