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
  local cluster_id; cluster_id=$("${java[@]}" kafka.tools.StorageTool random-uuid 2>>"$log")
  "${java[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$state/server.properties" >>"$log" 2>&1
  launch
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
