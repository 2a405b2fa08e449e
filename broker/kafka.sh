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
#
# A three-node cluster on this machine (three combined broker+controller nodes,
# a 3-voter KRaft quorum; replication factor 3, min.insync.replicas 2):
#
#   broker/kafka.sh cluster-start    format fresh storage for nodes 1-3, start them, wait
#                                    until every node is a running broker
#                                    (KAFKA_KEEP_DATA=1: restart on the storage already there)
#   broker/kafka.sh cluster-stop     stop every node
#   broker/kafka.sh cluster-status   exit 0 when all three nodes are running
#   broker/kafka.sh node-kill N      kill -9 node N (1-3), as a crash would
#   broker/kafka.sh node-start N     start node N again on its own storage, wait until ready
#
# Node N listens on KAFKA_PORT+N-1 (clients) and KAFKA_PORT+N+2 (controller), so
# KAFKA_PORT=9092 gives clients 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094.
# Each node's data lives in .local/kafka-cluster-$KAFKA_PORT/node-N.
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


# ---- the three-node cluster (cluster-* and node-* commands) ----------------

cluster_nodes=(1 2 3)
cluster_state="$root/.local/kafka-cluster-$port"
cluster_heap=${KAFKA_HEAP:-320m}
# A node restarted after kill -9 recovers its logs and catches up with the
# quorum before it is a broker again: slower than a fresh start, and much
# slower on a busy machine.
cluster_ready_timeout=${KAFKA_READY_TIMEOUT:-180}

node_port() { echo $((port + $1 - 1)); }
node_controller_port() { echo $((port + $1 + 2)); }
node_dir() { echo "$cluster_state/node-$1"; }

cluster_voters() {
  local voters="" n
  for n in "${cluster_nodes[@]}"; do
    voters="${voters:+$voters,}$n@127.0.0.1:$(node_controller_port "$n")"
  done
  echo "$voters"
}

cluster_bootstrap() {
  local servers="" n
  for n in "${cluster_nodes[@]}"; do
    servers="${servers:+$servers,}127.0.0.1:$(node_port "$n")"
  done
  echo "$servers"
}

# Sets node_java to the java command line of node $1. Small heaps, and only
# the quick JIT tier: three JVMs share a small machine with everything else.
node_java_for() {
  local dir; dir=$(node_dir "$1")
  node_java=(java -Xms128m "-Xmx$cluster_heap" -XX:+UseG1GC -XX:TieredStopAtLevel=1
             -Djava.awt.headless=true "-Dkafka.logs.dir=$dir"
             "-Dlog4j2.configurationFile=$dir/log4j2.properties" -cp "$lib/*")
}

node_pid() {
  local pidfile; pidfile="$(node_dir "$1")/broker.pid"
  [ -f "$pidfile" ] || return 1
  local pid; pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

check_node() {
  case "${1:-}" in
    1|2|3) ;;
    *) echo "ERROR: name a node: 1, 2 or 3" >&2; exit 2 ;;
  esac
}

# The configuration of node $1: replication 3 and min ISR 2 for the internal
# topics and as the default for topics created without their own settings.
write_node_config() {
  local n=$1 dir; dir=$(node_dir "$1")
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(cluster_voters)
listeners=PLAINTEXT://127.0.0.1:$(node_port "$n"),CONTROLLER://127.0.0.1:$(node_controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(node_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
# A dead node is fenced (and dropped from every ISR, its partitions led by
# another node) after this long without a heartbeat; the default is 9 s.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
# Three JVMs share a small machine: few threads each.
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
PROPS
  cat > "$dir/log4j2.properties" <<'PROPS'
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
# Its "Transition from STARTING to STARTED" line tells node_launch the node is
# a running broker: registered, caught up with the metadata, unfenced.
logger.brokerserver.name=kafka.server.BrokerServer
logger.brokerserver.level=INFO
PROPS
}

# Starts node $1 on its storage and waits until it runs as a broker. Other
# nodes must be starting too: a node waits for the quorum's majority.
node_launch() {
  local n=$1 dir; dir=$(node_dir "$1")
  local log="$dir/broker.log"
  local seen=0
  [ -f "$log" ] && seen=$(wc -l < "$log")
  node_java_for "$n"
  nohup "${node_java[@]}" kafka.Kafka "$dir/server.properties" >>"$dir/stdout.log" 2>&1 &
  echo $! > "$dir/broker.pid"
  echo "$seen" > "$dir/log-lines-before-start"
}

node_wait_ready() {
  local n=$1 dir; dir=$(node_dir "$1")
  local seen; seen=$(cat "$dir/log-lines-before-start")
  local deadline=$((SECONDS + cluster_ready_timeout))
  until tail -n +"$((seen + 1))" "$dir/broker.log" 2>/dev/null \
      | grep -q "Transition from STARTING to STARTED"; do
    if ! node_pid "$n" >/dev/null; then
      echo "ERROR: node $n exited while starting; its log follows" >&2
      tail -n 40 "$dir/broker.log" "$dir/stdout.log" >&2 || true
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "ERROR: node $n was not ready on :$(node_port "$n") within ${cluster_ready_timeout}s; its log follows" >&2
      tail -n 40 "$dir/broker.log" "$dir/stdout.log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  echo "node $n ready on 127.0.0.1:$(node_port "$n") (pid $(cat "$dir/broker.pid"))"
}

node_ports_free() {
  local n=$1 p
  for p in "$(node_port "$n")" "$(node_controller_port "$n")"; do
    if port_open "$p"; then
      echo "ERROR: port $p is already taken; node $n cannot start (set KAFKA_PORT)" >&2
      exit 1
    fi
  done
}

cluster_start() {
  fetch
  local n
  if cluster_status; then echo "cluster already running on $(cluster_bootstrap)"; return 0; fi
  for n in "${cluster_nodes[@]}"; do
    if node_pid "$n" >/dev/null; then
      echo "ERROR: node $n is running but the cluster is not whole; run node-start or cluster-stop" >&2
      exit 1
    fi
    node_ports_free "$n"
  done
  if [ "${KAFKA_KEEP_DATA:-0}" != 1 ] || [ ! -f "$(node_dir 1)/server.properties" ]; then
    rm -rf "$cluster_state"
    mkdir -p "$cluster_state"
    local cluster_id
    node_java_for 1
    cluster_id=$("${node_java[@]}" kafka.tools.StorageTool random-uuid 2>>"$cluster_state/format.log")
    for n in "${cluster_nodes[@]}"; do
      write_node_config "$n"
      node_java_for "$n"
      "${node_java[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
        -c "$(node_dir "$n")/server.properties" >>"$cluster_state/format.log" 2>&1 &
    done
    wait
  fi
  # All three at once: each waits for a majority of the controller quorum.
  for n in "${cluster_nodes[@]}"; do node_launch "$n"; done
  for n in "${cluster_nodes[@]}"; do
    (node_wait_ready "$n") || { cluster_stop; exit 1; }
  done
  echo "Kafka $version cluster ready on $(cluster_bootstrap) (data in $cluster_state)"
}

node_stop() {
  local n=$1 pid dir; dir=$(node_dir "$1")
  pid=$(node_pid "$n") || { rm -f "$dir/broker.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "node $n did not stop within 20s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$dir/broker.pid"
  echo "node $n on :$(node_port "$n") stopped"
}

cluster_stop() {
  local n
  # In parallel: a node alone waits for its peers' quorum before it shuts down.
  for n in "${cluster_nodes[@]}"; do node_stop "$n" & done
  wait
}

cluster_status() {
  local n
  for n in "${cluster_nodes[@]}"; do
    node_pid "$n" >/dev/null && port_open "$(node_port "$n")" || return 1
  done
}

node_kill() {
  check_node "$1"
  local pid dir; dir=$(node_dir "$1")
  pid=$(node_pid "$1") || { echo "node $1 is not running" >&2; exit 1; }
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$dir/broker.pid"
  echo "node $1 (pid $pid) killed"
}

node_start() {
  check_node "$1"
  if node_pid "$1" >/dev/null; then echo "node $1 already running"; return 0; fi
  [ -f "$(node_dir "$1")/server.properties" ] || {
    echo "ERROR: node $1 has no storage; run cluster-start first" >&2; exit 1; }
  node_ports_free "$1"
  node_launch "$1"
  node_wait_ready "$1"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  cluster-start) cluster_start ;;
  cluster-stop) cluster_stop ;;
  cluster-status) cluster_status ;;
  node-kill) node_kill "${2:-}" ;;
  node-start) node_start "${2:-}" ;;
  *) echo "usage: $0 fetch|start|stop|status|cluster-start|cluster-stop|cluster-status|node-kill N|node-start N" >&2
     exit 2 ;;
esac
