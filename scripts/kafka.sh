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
# Usage: scripts/kafka.sh install|start|stop|status|reset
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
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
CFG
  if [ -n "$TRANSACTION_MAX_TIMEOUT_MS" ]; then
    echo "transaction.max.timeout.ms=$TRANSACTION_MAX_TIMEOUT_MS" >>"$HOME_DIR/server.properties"
  fi
  cat >"$HOME_DIR/log4j2.properties" <<CFG
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

java_run() {
  java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HOME_DIR/log4j2.properties" -cp "$LIB/*" "$@"
}

format_storage() {
  [ -f "$DATA/meta.properties" ] && return
  mkdir -p "$DATA"
  local cluster_id
  cluster_id=$(java_run kafka.tools.StorageTool random-uuid)
  java_run kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$HOME_DIR/server.properties" \
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
  for _ in $(seq 1 120); do
    if port_open "$PORT" && port_open "$SASL_PORT" && grep -q "Kafka Server started" "$LOG" 2>/dev/null; then
      echo "kafka: started on 127.0.0.1:$PORT (SASL_SSL $SASL_PORT), pid $(cat "$PIDFILE")"
      return
    fi
    if ! running; then
      echo "kafka: broker exited during start; last lines of $LOG:" >&2
      tail -n 30 "$LOG" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "kafka: broker did not answer within 60 s; see $LOG" >&2
  return 1
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
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -9 "$pid" 2>/dev/null || true
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

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  reset) reset ;;
  *) echo "usage: $0 install|start|stop|status|reset" >&2; exit 2 ;;
esac
