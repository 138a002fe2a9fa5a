#!/usr/bin/env bash
# Local single-node Apache Kafka 4.x (KRaft, broker+controller in one JVM) for the demo and the tests.
# Jars come from Maven Central through scripts/kafka/pom.xml; everything else lives in the git-ignored .cache/kafka.
#   PLAINTEXT      127.0.0.1:9092
#   SASL_SSL       127.0.0.1:9093  SCRAM-SHA-256 and SCRAM-SHA-512, CA at .cache/kafka/tls/ca.crt
#   CONTROLLER     127.0.0.1:9094
# PSTT_KAFKA_PORT moves all three (port, port+1, port+2) and PSTT_KAFKA_HOME the broker's files, so tests that
# stop or restart a broker run their own instead of the shared one; the jars are always the shared cache.
# PSTT_KAFKA_AUTO_CREATE_TOPICS=false starts a broker that does not create topics on first use (as many production
# clusters are set up); the default broker keeps auto.create.topics.enable=true.
# PSTT_KAFKA_TRANSACTION_MAX_TIMEOUT_MS sets the broker's transaction.max.timeout.ms (a static setting: the longest
# transaction it accepts), for tests of a cluster with a lower limit; unset, the broker's default (15 min) stays.
#
# `cluster` runs a replicated cluster instead, beside the single broker: three KRaft nodes (broker+controller in one
# JVM each, a three-voter quorum), replication factor 3 and min.insync.replicas 2 for every topic, the internal
# ones included, files under .cache/kafka-cluster/node-N (PSTT_KAFKA_CLUSTER_HOME moves them).
#   node N   PLAINTEXT 127.0.0.1:1909(1+N), CONTROLLER 127.0.0.1:1919(1+N)   (PSTT_KAFKA_CLUSTER_PORT moves 19092)
# `kill N` is SIGKILL (a crash: no controlled shutdown); `stop-broker N` a clean stop (leadership moved first).
# Usage: scripts/kafka.sh install|start|stop|status|reset
#        scripts/kafka.sh cluster start|stop|status|bootstrap|kill N|stop-broker N|start-broker N|reset
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOME_DIR=${PSTT_KAFKA_HOME:-$ROOT/.cache/kafka}
LIB=$ROOT/.cache/kafka/lib
PORT=${PSTT_KAFKA_PORT:-9092}
SASL_PORT=$((PORT + 1))
CONTROLLER_PORT=$((PORT + 2))
DATA=$HOME_DIR/data
TLS=$HOME_DIR/tls
PIDFILE=$HOME_DIR/broker.pid
LOG=$HOME_DIR/broker.log
POM=$ROOT/scripts/kafka/pom.xml
SCRAM_USER=${PSTT_KAFKA_SCRAM_USER:-pstt}
AUTO_CREATE_TOPICS=${PSTT_KAFKA_AUTO_CREATE_TOPICS:-true}
TRANSACTION_MAX_TIMEOUT_MS=${PSTT_KAFKA_TRANSACTION_MAX_TIMEOUT_MS:-}
SCRAM_PASSWORD=${PSTT_KAFKA_SCRAM_PASSWORD:-pstt-secret}
TLS_PASSWORD=pstt-tls

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# After a TERM: up to 60 s for the broker's controlled shutdown, then KILL.
wait_gone() {
  local pid=$1
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null || true
}

install() {
  local stamp
  stamp=$(sha256sum "$POM" | cut -c1-16)
  if [ -f "$LIB/.stamp" ] && [ "$(cat "$LIB/.stamp")" = "$stamp" ]; then
    return
  fi
  echo "kafka: fetching broker jars from Maven Central into $LIB"
  rm -rf "$LIB" && mkdir -p "$LIB"
  mvn -q -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$LIB" -DincludeScope=runtime
  echo "$stamp" >"$LIB/.stamp"
}

make_tls() {
  [ -f "$TLS/broker.p12" ] && return
  mkdir -p "$TLS"
  (
    cd "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=pstt-local-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key -out broker.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
    openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile san.ext -out broker.crt 2>/dev/null
    openssl pkcs12 -export -in broker.crt -inkey broker.key -certfile ca.crt -name broker \
      -out broker.p12 -passout "pass:$TLS_PASSWORD"
  )
}

write_log_config() {
  cat >"$1/log4j2.properties" <<CFG
rootLogger.level=WARN
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.server.name=kafka.server.KafkaRaftServer
logger.server.level=INFO
CFG
}

# The settings of the broker's internal topics (offsets, transactions, share groups): replication factor, min ISR,
# partitions; and what both the single broker and the cluster set alike.
internal_topics() {
  cat <<CFG
offsets.topic.replication.factor=$1
offsets.topic.num.partitions=$3
transaction.state.log.replication.factor=$1
transaction.state.log.min.isr=$2
transaction.state.log.num.partitions=$3
share.coordinator.state.topic.replication.factor=$1
share.coordinator.state.topic.min.isr=$2
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
CFG
}

write_config() {
  cat >"$HOME_DIR/server.properties" <<CFG
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_SSL://127.0.0.1:$SASL_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_SSL://127.0.0.1:$SASL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS/broker.p12
ssl.keystore.password=$TLS_PASSWORD
ssl.key.password=$TLS_PASSWORD
log.dirs=$DATA
num.partitions=1
auto.create.topics.enable=$AUTO_CREATE_TOPICS
$(internal_topics 1 1 1)
CFG
  if [ -n "$TRANSACTION_MAX_TIMEOUT_MS" ]; then
    echo "transaction.max.timeout.ms=$TRANSACTION_MAX_TIMEOUT_MS" >>"$HOME_DIR/server.properties"
  fi
  write_log_config "$HOME_DIR"
}

# A Kafka tool (StorageTool) in a small JVM, logging as the node whose log4j2.properties is given first.
java_run() {
  local log_config=$1
  shift
  java -Xms128m -Xmx256m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$log_config" -cp "$LIB/*" "$@"
}

format_storage() {
  [ -f "$DATA/meta.properties" ] && return
  mkdir -p "$DATA"
  local cluster_id
  cluster_id=$(java_run "$HOME_DIR/log4j2.properties" kafka.tools.StorageTool random-uuid)
  java_run "$HOME_DIR/log4j2.properties" kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$HOME_DIR/server.properties" \
    --add-scram "SCRAM-SHA-256=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]" >/dev/null
}

start() {
  if running && port_open "$PORT"; then
    echo "kafka: already running (pid $(cat "$PIDFILE"))"
    return
  fi
  if port_open "$PORT"; then
    echo "kafka: something else listens on 127.0.0.1:$PORT; not starting a second broker" >&2
    return 1
  fi
  install
  mkdir -p "$HOME_DIR"
  make_tls
  write_config
  format_storage
  nohup java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HOME_DIR/log4j2.properties" -cp "$LIB/*" \
    kafka.Kafka "$HOME_DIR/server.properties" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 240); do
    if port_open "$PORT" && port_open "$SASL_PORT" && grep -q "Kafka Server started" "$LOG" 2>/dev/null; then
      echo "kafka: started on 127.0.0.1:$PORT (SASL_SSL $SASL_PORT), pid $(cat "$PIDFILE")"
      return
    fi
    if ! running; then
      start_failed "exited during start"
      return 1
    fi
    sleep 0.5
  done
  start_failed "did not answer within 120 s"
  return 1
}

start_failed() {
  echo "kafka: broker on 127.0.0.1:$PORT $1; last lines of $LOG:" >&2
  tail -n 30 "$LOG" >&2
}

stop() {
  if ! running; then
    echo "kafka: not running"
    rm -f "$PIDFILE"
    return
  fi
  local pid
  pid=$(cat "$PIDFILE")
  kill "$pid"
  wait_gone "$pid"
  rm -f "$PIDFILE"
  echo "kafka: stopped"
}

status() {
  if running && port_open "$PORT"; then
    echo "kafka: running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
  else
    echo "kafka: not running"
    return 1
  fi
}

reset() {
  stop
  rm -rf "$DATA" "$LOG"
}

CLUSTER_HOME=${PSTT_KAFKA_CLUSTER_HOME:-$ROOT/.cache/kafka-cluster}
CLUSTER_PORT=${PSTT_KAFKA_CLUSTER_PORT:-19092}
NODES="1 2 3"

node_port() { echo $((CLUSTER_PORT + $1 - 1)); }
node_controller_port() { echo $((CLUSTER_PORT + 100 + $1 - 1)); }
node_dir() { echo "$CLUSTER_HOME/node-$1"; }
node_pid() { cat "$(node_dir "$1")/broker.pid" 2>/dev/null; }
node_running() { local pid; pid=$(node_pid "$1") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

check_node() {
  case "${1:-}" in
    1 | 2 | 3) ;;
    *) echo "kafka cluster: name a node, 1, 2 or 3 (got '${1:-}')" >&2; exit 2 ;;
  esac
}

cluster_bootstrap() {
  local servers="" n
  for n in $NODES; do servers="$servers${servers:+,}127.0.0.1:$(node_port "$n")"; done
  echo "$servers"
}

write_node_config() {
  local n=$1 dir voters="" v
  dir=$(node_dir "$n")
  for v in $NODES; do voters="$voters${voters:+,}$v@127.0.0.1:$(node_controller_port "$v")"; done
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<CFG
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(node_port "$n"),CONTROLLER://127.0.0.1:$(node_controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(node_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=true
$(internal_topics 3 2 3)
CFG
  write_log_config "$dir"
}

format_node() {
  local n=$1 dir
  dir=$(node_dir "$n")
  [ -f "$dir/data/meta.properties" ] && return
  mkdir -p "$dir/data"
  [ -f "$CLUSTER_HOME/cluster.id" ] ||
    java_run "$dir/log4j2.properties" kafka.tools.StorageTool random-uuid >"$CLUSTER_HOME/cluster.id"
  java_run "$dir/log4j2.properties" kafka.tools.StorageTool format -t "$(cat "$CLUSTER_HOME/cluster.id")" -c "$dir/server.properties" \
    >/dev/null
}

launch_node() {
  local n=$1 dir
  dir=$(node_dir "$n")
  if node_running "$n"; then return; fi
  write_node_config "$n"
  format_node "$n"
  echo "--- start $(date -u +%FT%TZ)" >>"$dir/broker.log"
  nohup java -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$LIB/*" \
    kafka.Kafka "$dir/server.properties" >>"$dir/broker.log" 2>&1 </dev/null 9>&- &
  echo $! >"$dir/broker.pid"
}

# Started: the node's last start in its log reached "Kafka Server started" (the broker is unfenced by then).
node_started() {
  local dir
  dir=$(node_dir "$1")
  node_running "$1" && port_open "$(node_port "$1")" &&
    awk '/^--- start/ {started = 0} /Kafka Server started/ {started = 1} END {exit !started}' "$dir/broker.log"
}

wait_nodes() {
  local n pending
  for _ in $(seq 1 240); do
    pending=""
    for n in "$@"; do
      node_started "$n" && continue
      if ! node_running "$n"; then
        echo "kafka cluster: node $n exited during start; last lines of $(node_dir "$n")/broker.log:" >&2
        tail -n 30 "$(node_dir "$n")/broker.log" >&2
        return 1
      fi
      pending="$pending $n"
    done
    [ -z "$pending" ] && return
    sleep 0.5
  done
  echo "kafka cluster: node(s)$pending did not start within 120 s; see $CLUSTER_HOME/node-N/broker.log" >&2
  return 1
}

# One starter at a time (test workers and make up-cluster may ask together): a node is never launched twice.
lock_starts() {
  mkdir -p "$CLUSTER_HOME"
  exec 9>"$CLUSTER_HOME/.lock"
  flock 9
}

cluster_start() {
  install
  lock_starts
  local n
  for n in $NODES; do
    if ! node_running "$n" && port_open "$(node_port "$n")"; then
      echo "kafka cluster: something else listens on 127.0.0.1:$(node_port "$n"); not starting node $n" >&2
      return 1
    fi
  done
  for n in $NODES; do launch_node "$n"; done
  wait_nodes $NODES
  echo "kafka cluster: running on $(cluster_bootstrap)"
}

start_broker() {
  check_node "$1"
  install
  lock_starts
  launch_node "$1"
  wait_nodes "$1"
  echo "kafka cluster: node $1 started on 127.0.0.1:$(node_port "$1"), pid $(node_pid "$1")"
}

kill_broker() {
  check_node "$1"
  if node_running "$1"; then
    local pid
    pid=$(node_pid "$1")
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    echo "kafka cluster: node $1 killed (SIGKILL, pid $pid)"
  else
    echo "kafka cluster: node $1 not running"
  fi
}

stop_broker() {
  check_node "$1"
  node_running "$1" || { echo "kafka cluster: node $1 not running"; return; }
  local pid
  pid=$(node_pid "$1")
  kill "$pid"
  wait_gone "$pid"
  echo "kafka cluster: node $1 stopped"
}

cluster_stop() {
  local n pid
  for n in $NODES; do
    node_running "$n" && kill "$(node_pid "$n")"
  done
  for n in $NODES; do
    pid=$(node_pid "$n") || continue
    wait_gone "$pid"
    rm -f "$(node_dir "$n")/broker.pid"
  done
  echo "kafka cluster: stopped"
}

cluster_status() {
  local n down=0
  for n in $NODES; do
    if node_started "$n"; then
      echo "kafka cluster: node $n running (pid $(node_pid "$n")) on 127.0.0.1:$(node_port "$n")"
    else
      echo "kafka cluster: node $n not running"
      down=1
    fi
  done
  return $down
}

cluster() {
  case "${1:-}" in
    start) cluster_start ;;
    stop) cluster_stop ;;
    status) cluster_status ;;
    bootstrap) cluster_bootstrap ;;
    kill) kill_broker "${2:-}" ;;
    stop-broker) stop_broker "${2:-}" ;;
    start-broker) start_broker "${2:-}" ;;
    reset) cluster_stop; rm -rf "$CLUSTER_HOME" ;;
    *) echo "usage: $0 cluster start|stop|status|bootstrap|kill N|stop-broker N|start-broker N|reset" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  reset) reset ;;
  cluster) shift; cluster "$@" ;;
  *) echo "usage: $0 install|start|stop|status|reset|cluster ..." >&2; exit 2 ;;
esac
