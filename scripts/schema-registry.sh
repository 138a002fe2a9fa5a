#!/usr/bin/env bash
# Local Schema Registry (AxonOps Schema Registry, a Confluent-compatible API in one Go binary) for the tests of the
# avro and json_schema value formats. Built once from its Go module into the git-ignored .cache/schema-registry;
# runs on 127.0.0.1 with in-memory storage (every start is an empty registry), its API at the root, no auth.
#   HTTP  127.0.0.1:8081   (PSTT_SCHEMA_REGISTRY_PORT moves it; PSTT_SCHEMA_REGISTRY_HOME moves config, log, pid)
# `start` is idempotent and prints the registry's URL as its last line.
# Quirks: GET /subjects on an empty registry answers null, not []; the log has a line per request (its level is
# set only through SCHEMA_REGISTRY_LOG_LEVEL=debug, never lower).
# Usage: scripts/schema-registry.sh start|stop|status
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=v0.2.1
MODULE=github.com/axonops/axonops-schema-registry
BUILD=$ROOT/.cache/schema-registry
BIN=$BUILD/schema-registry-$VERSION
HOME_DIR=${PSTT_SCHEMA_REGISTRY_HOME:-$BUILD}
PORT=${PSTT_SCHEMA_REGISTRY_PORT:-8081}
PIDFILE=$HOME_DIR/registry.pid
LOG=$HOME_DIR/registry.log
CONFIG=$HOME_DIR/config.yaml
URL=http://127.0.0.1:$PORT
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

answers() { curl -fs -o /dev/null --max-time 2 "$URL/config"; }

# The Go module proxy will not list the module's versions, so the exact version is fetched into a throwaway module.
install() {
  [ -x "$BIN" ] && return
  echo "schema-registry: building $MODULE $VERSION into $BIN"
  mkdir -p "$BUILD"
  local work
  work=$(mktemp -d)
  (
    cd "$work"
    "$GO" mod init pstt-schema-registry-build 2>/dev/null
    "$GO" get "$MODULE/cmd/schema-registry@$VERSION" 2>&1 | grep -v '^go: \(added\|downloading\|finding\)' >&2 || true
    "$GO" build -o "$BIN.tmp" "$MODULE/cmd/schema-registry"
  ) || { rm -rf "$work"; echo "schema-registry: build failed" >&2; return 1; }
  rm -rf "$work"
  mv "$BIN.tmp" "$BIN"
}

write_config() {
  cat >"$CONFIG" <<CFG
server:
  host: "127.0.0.1"
  port: $PORT
storage:
  type: memory
compatibility:
  default_level: BACKWARD
CFG
}

start() {
  # One starter at a time (test workers may ask together): the second waits, then finds the registry running.
  mkdir -p "$HOME_DIR"
  exec 9>"$HOME_DIR/.lock"
  flock 9
  if running && answers; then
    echo "schema-registry: already running (pid $(cat "$PIDFILE"))"
    echo "$URL"
    return
  fi
  if port_open "$PORT"; then
    echo "schema-registry: something else listens on 127.0.0.1:$PORT; not starting a second registry" >&2
    return 1
  fi
  install
  write_config
  echo "--- start $(date -u +%FT%TZ)" >>"$LOG"
  nohup "$BIN" -config "$CONFIG" >>"$LOG" 2>&1 </dev/null 9>&- &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 120); do
    if answers; then
      echo "schema-registry: started on 127.0.0.1:$PORT, pid $(cat "$PIDFILE")"
      echo "$URL"
      return
    fi
    if ! running; then
      start_failed "exited during start"
      return 1
    fi
    sleep 0.25
  done
  start_failed "did not answer within 30 s"
  return 1
}

start_failed() {
  echo "schema-registry: registry on 127.0.0.1:$PORT $1; last lines of $LOG:" >&2
  tail -n 30 "$LOG" >&2
}

stop() {
  if ! running; then
    echo "schema-registry: not running"
    rm -f "$PIDFILE"
    return
  fi
  local pid
  pid=$(cat "$PIDFILE")
  kill "$pid"
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  echo "schema-registry: stopped"
}

status() {
  if running && answers; then
    echo "schema-registry: running (pid $(cat "$PIDFILE")) on $URL"
  else
    echo "schema-registry: not running"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
