#!/usr/bin/env bash
# The local single-node Kafka (KRaft) broker, run from Apache Kafka's jars.
#
#   broker/kafka.sh fetch   download the jars once (Maven Central, via broker/pom.xml)
#   broker/kafka.sh start   format fresh storage, start in the background, wait until ready
#                           (KAFKA_KEEP_DATA=1: restart on the storage already there)
#   broker/kafka.sh stop    stop it (SIGTERM, then SIGKILL after a grace period)
#   broker/kafka.sh status  exit 0 when the broker answers on its port
#
# KAFKA_PORT (default 9092) and KAFKA_CONTROLLER_PORT (default KAFKA_PORT+1)
# choose the ports; the data lives in .local/kafka-$KAFKA_PORT (git-ignored).
# KAFKA_SECURITY=sasl_ssl starts it with TLS and SCRAM (see sasl_ssl_setup).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
port=${KAFKA_PORT:-9092}
controller_port=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
state="$root/.local/kafka-$port"
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
lib="$here/lib/$version"
pidfile="$state/broker.pid"
log="$state/broker.log"
ready_timeout=${KAFKA_READY_TIMEOUT:-60}
java=(java -Xms256m "-Xmx${KAFKA_HEAP:-768m}" -XX:+UseG1GC -Djava.awt.headless=true
      "-Dkafka.logs.dir=$state" "-Dlog4j2.configurationFile=$state/log4j2.properties"
      -cp "$lib/*")

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fetch() {
  if [ -f "$lib/kafka_2.13-$version.jar" ]; then return 0; fi
  echo "fetching Apache Kafka $version jars into $lib (once)"
  (cd "$here" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$lib")
}

running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid; pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
  fetch
  if running_pid >/dev/null; then echo "broker already running on :$port"; return 0; fi
  for p in "$port" "$controller_port"; do
    if port_open "$p"; then
      echo "ERROR: port $p is already taken; the broker cannot start (set KAFKA_PORT)" >&2
      exit 1
    fi
  done
  if [ "${KAFKA_KEEP_DATA:-0}" = 1 ] && [ -f "$state/server.properties" ]; then
    launch  # a restart: same storage, same topics and offsets
    return
  fi
  rm -rf "$state"; mkdir -p "$state/data"
  cat > "$state/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$state/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
PROPS
  cat > "$state/log4j2.properties" <<'PROPS'
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=${sys:kafka.logs.dir}/broker.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=WARN
logger.apache.name=org.apache.kafka
logger.apache.level=WARN
PROPS
  local format_args=()
  if [ "${KAFKA_SECURITY:-plaintext}" = sasl_ssl ]; then sasl_ssl_setup; fi
  local cluster_id; cluster_id=$("${java[@]}" kafka.tools.StorageTool random-uuid 2>>"$log")
  "${java[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$state/server.properties" \
    "${format_args[@]}" >>"$log" 2>&1
  launch
}

# --- SASL_SSL mode (KAFKA_SECURITY=sasl_ssl) ----------------------------------
# The client listener speaks TLS (a local CA and a broker certificate for
# 127.0.0.1/localhost, made with the JDK's keytool) and SCRAM-SHA-512; the
# SCRAM users (admin for the broker itself, dispatch for the processes) are
# created at format time. Clients find what they need, as environment
# variables, in $state/client.env (mode 0600). The controller listener stays
# PLAINTEXT on loopback. Called by start() with format_args in scope.
sasl_ssl_setup() {
  local tls="$state/tls" store_pass admin_pass client_pass
  store_pass=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  admin_pass=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  client_pass=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  mkdir -p "$tls"; chmod 700 "$tls"
  local kt=(keytool -storetype PKCS12 -storepass "$store_pass" -noprompt)
  "${kt[@]}" -genkeypair -alias ca -keystore "$tls/ca.p12" -dname CN=dispatch-local-ca \
    -keyalg RSA -keysize 2048 -validity 30 -ext bc:c >>"$log" 2>&1
  "${kt[@]}" -exportcert -alias ca -keystore "$tls/ca.p12" -rfc -file "$tls/ca.pem" >>"$log" 2>&1
  "${kt[@]}" -genkeypair -alias broker -keystore "$tls/broker.p12" -dname CN=localhost \
    -keyalg RSA -keysize 2048 -validity 30 >>"$log" 2>&1
  "${kt[@]}" -certreq -alias broker -keystore "$tls/broker.p12" -file "$tls/broker.csr" >>"$log" 2>&1
  "${kt[@]}" -gencert -alias ca -keystore "$tls/ca.p12" -infile "$tls/broker.csr" -rfc \
    -outfile "$tls/broker.pem" -validity 30 -ext SAN=IP:127.0.0.1,DNS:localhost \
    -ext EKU=serverAuth >>"$log" 2>&1
  "${kt[@]}" -importcert -alias ca -keystore "$tls/broker.p12" -file "$tls/ca.pem" >>"$log" 2>&1
  "${kt[@]}" -importcert -alias broker -keystore "$tls/broker.p12" -file "$tls/broker.pem" >>"$log" 2>&1
  # Later keys override the PLAINTEXT ones written above.
  cat >> "$state/server.properties" <<PROPS
listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=SASL_SSL://127.0.0.1:$port
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pass";
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls/broker.p12
ssl.keystore.password=$store_pass
ssl.key.password=$store_pass
ssl.truststore.type=PKCS12
ssl.truststore.location=$tls/broker.p12
ssl.truststore.password=$store_pass
PROPS
  chmod 600 "$state/server.properties"
  format_args=(--add-scram "SCRAM-SHA-512=[name=admin,password=$admin_pass]"
               --add-scram "SCRAM-SHA-512=[name=dispatch,password=$client_pass]")
  (umask 077; cat > "$state/client.env" <<ENV
KAFKA_SECURITY_PROTOCOL=SASL_SSL
KAFKA_SSL_CAFILE=$tls/ca.pem
KAFKA_SASL_MECHANISM=SCRAM-SHA-512
KAFKA_SASL_USERNAME=dispatch
KAFKA_SASL_PASSWORD=$client_pass
ENV
)
}

# Runs the broker on the storage in $state and waits until it answers.
launch() {
  nohup "${java[@]}" kafka.Kafka "$state/server.properties" >>"$state/stdout.log" 2>&1 &
  echo $! > "$pidfile"
  local deadline=$((SECONDS + ready_timeout))
  until port_open "$port"; do
    if ! running_pid >/dev/null; then
      echo "ERROR: the broker exited while starting; its log follows" >&2
      tail -n 40 "$log" "$state/stdout.log" >&2 || true
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "ERROR: the broker was not ready on :$port within ${ready_timeout}s; its log follows" >&2
      tail -n 40 "$log" "$state/stdout.log" >&2 || true
      stop
      exit 1
    fi
    sleep 0.5
  done
  echo "Kafka $version ready on 127.0.0.1:$port (pid $(cat "$pidfile"), data in $state)"
}

stop() {
  local pid
  pid=$(running_pid) || { rm -f "$pidfile"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "broker did not stop within 20s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$pidfile"
  echo "broker on :$port stopped"
}

status() { running_pid >/dev/null && port_open "$port"; }

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
