#!/usr/bin/env bash
# A local single-node Apache Kafka broker (KRaft) for development and tests, on 127.0.0.1 only.
# Its jars come from Maven Central (scripts/kafka/pom.xml); Java 17+ and Maven are required.
# Two client listeners: PLAINTEXT on KAFKA_PORT, and SASL_SSL on KAFKA_SASL_SSL_PORT (SCRAM-SHA-256
# and -512, TLS with a certificate from a CA made here, $dir/tls/ca.pem, for 127.0.0.1 and
# localhost), whose SCRAM users are created at every start: KAFKA_SASL_USERNAME /
# KAFKA_SASL_PASSWORD (movieapp / movieapp-dev-password: a development broker's, never a
# real one's), allowed everything, and ratingingestor / ratingingestor-dev-password,
# allowed only what ACLs grant it (StandardAuthorizer; PLAINTEXT clients are allowed everything).
#
#   scripts/kafka.sh start    fetch the jars if absent, format the log dir once, start, wait until ready
#   scripts/kafka.sh stop     stop the broker started here (by its recorded PID)
#   scripts/kafka.sh status
#
# Settings (environment): KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_SASL_SSL_PORT (9094),
# KAFKA_DIR (.data/kafka), KAFKA_HEAP (512m), KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${KAFKA_DIR:-$root/.data/kafka}"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
sasl_ssl_port="${KAFKA_SASL_SSL_PORT:-9094}"
sasl_username="${KAFKA_SASL_USERNAME:-movieapp}"
sasl_password="${KAFKA_SASL_PASSWORD:-movieapp-dev-password}"
# A second SCRAM user with no rights of its own: what a producer gets until ACLs grant it some.
limited_username="ratingingestor"
limited_password="ratingingestor-dev-password"
tls="$dir/tls"
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

# The SASL_SSL listener's certificate: a CA of this broker's own (what clients trust:
# KAFKA_TLS_CA_FILE=$dir/tls/ca.pem) and a broker certificate it signs, PEM files that
# Kafka reads as they are (ssl.keystore.type=PEM). Made once; kept across restarts.
make_certificates() {
  [ -f "$tls/broker.pem" ] && return
  command -v openssl >/dev/null 2>&1 || { echo "kafka: openssl is required for the SASL_SSL listener" >&2; exit 1; }
  mkdir -p "$tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/ca.key" -out "$tls/ca.pem" \
    -days 3650 -subj "/CN=movieapp development Kafka CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/broker.key" -out "$tls/broker.csr" \
    -subj "/CN=localhost" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
    "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$tls/broker.ext"
  openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -set_serial "$(date +%s)" \
    -days 3650 -extfile "$tls/broker.ext" -out "$tls/broker.crt" 2>/dev/null
  # Kafka's PEM keystore: the PKCS#8 key, then the certificate chain.
  cat "$tls/broker.key" "$tls/broker.crt" >"$tls/broker.pem.next"
  chmod 600 "$tls/ca.key" "$tls/broker.key" "$tls/broker.pem.next"
  mv "$tls/broker.pem.next" "$tls/broker.pem"
}

write_config() {
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port,SASL_SSL://127.0.0.1:$sasl_ssl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_SSL://127.0.0.1:$sasl_ssl_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
# Who may do what: PLAINTEXT clients and the controller are ANONYMOUS, allowed everything
# (development and the tests), as is the SASL user $sasl_username; other SASL users only
# what ACLs grant them.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS;User:$sasl_username
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

# The SCRAM users of the SASL_SSL listener, both mechanisms; setting them again is harmless.
# Through the broker (not `kafka-storage format --add-scram`), so a broker formatted before
# the listener existed gets it too.
add_scram_users() {
  add_scram_user "$sasl_username" "$sasl_password"
  add_scram_user "$limited_username" "$limited_password"
}

add_scram_user() {
  local username="$1" password="$2"
  # One mechanism per request: the broker refuses two changes of one user's credentials in one.
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    java -cp "$lib/*" -Dlog4j2.configurationFile="$dir/log4j2.properties" kafka.admin.ConfigCommand \
      --bootstrap-server "127.0.0.1:$port" --alter --entity-type users --entity-name "$username" \
      --add-config "$mechanism=[password=$password]" >"$dir/scram.log" 2>&1 || {
      # The tool repeats its arguments, the password among them: shown without that line.
      echo "kafka: cannot create the SCRAM user $username ($mechanism)"
      grep -v "with args" "$dir/scram.log" | head -5
      exit 1
    }
  done
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
  make_certificates
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
  add_scram_users
  echo "kafka: started on 127.0.0.1:$port, SASL_SSL on 127.0.0.1:$sasl_ssl_port (pid $(cat "$pidfile"))"
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
