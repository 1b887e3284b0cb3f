#!/usr/bin/env bash
# A local single-node Apache Kafka broker (KRaft) for development and tests, on 127.0.0.1 only.
# Its jars come from Maven Central (scripts/kafka/pom.xml); Java 17+ and Maven are required.
#
#   scripts/kafka.sh start    fetch the jars if absent, format the log dir once, start, wait until ready
#   scripts/kafka.sh stop     stop the broker started here (by its recorded PID)
#   scripts/kafka.sh status
#
# Settings (environment): KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_DIR (.data/kafka),
# KAFKA_HEAP (512m).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${KAFKA_DIR:-$root/.data/kafka}"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
heap="${KAFKA_HEAP:-512m}"
lib="$dir/lib"
pidfile="$dir/kafka.pid"
log="$dir/server.log"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

fetch_jars() {
  [ -f "$lib/.complete" ] && return
  command -v mvn >/dev/null 2>&1 || { echo "kafka: Maven (mvn) is required to fetch the broker's jars" >&2; exit 1; }
  echo "kafka: fetching the broker's jars from Maven Central"
  rm -rf "$lib"
  mvn -q -B -Dstyle.color=never -f "$root/scripts/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$lib"
  touch "$lib/.complete"
}

write_config() {
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
  cat >"$dir/log4j2.properties" <<PROPS
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.apache.name=org.apache
logger.apache.level=WARN
PROPS
}

# Ready when the broker answers on its listener and has logged that it started.
ready() { grep -q "Kafka Server started" "$log" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

start() {
  command -v java >/dev/null 2>&1 || { echo "kafka: Java 17+ is required" >&2; exit 1; }
  mkdir -p "$dir"
  if running; then
    echo "kafka: already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
    return
  fi
  fetch_jars
  write_config
  if [ ! -f "$dir/data/meta.properties" ]; then
    cluster_id="$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid)"
    java -cp "$lib/*" -Dlog4j2.configurationFile="$dir/log4j2.properties" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log"; exit 1; }
  fi
  : >"$log"
  nohup java "-Xmx$heap" "-Xms$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$lib/*" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 240); do
    ready && break
    running || { echo "kafka: the broker exited during start"; tail -30 "$log" "$dir/stdout.log"; exit 1; }
    sleep 0.5
  done
  ready || { echo "kafka: did not become ready in 120 s"; tail -30 "$log"; exit 1; }
  echo "kafka: started on 127.0.0.1:$port (pid $(cat "$pidfile"))"
}

stop() {
  if running; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 120); do running || break; sleep 0.5; done
    running && kill -9 "$(cat "$pidfile")"
    rm -f "$pidfile"
    echo "kafka: stopped"
  else
    echo "kafka: not running"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "kafka: running on 127.0.0.1:$port (pid $(cat "$pidfile"))"; else echo "kafka: stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
