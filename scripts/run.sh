#!/usr/bin/env bash
# `make run`: a fresh local broker, every process, the simulator and the demo,
# in the foreground. Ctrl-C stops them all (honcho: SIGTERM, SIGKILL after 5 s)
# and then the broker.
set -euo pipefail
cd "$(dirname "$0")/.."

export KAFKA_PORT=${KAFKA_PORT:-9092}
export KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
export PROVIDER_BASE_URL=${PROVIDER_BASE_URL:-http://127.0.0.1:8090}
export SIMULATOR_CALLBACK_URL=${SIMULATOR_CALLBACK_URL:-http://127.0.0.1:8080/v0.1/status}
export PROJECTOR_URL=${PROJECTOR_URL:-http://127.0.0.1:8070}
export WEBHOOK_ALLOW_PRIVATE=1   # the demo receiver listens on loopback
export PROCESSOR_DATA_DIR=.local/run/processor
export PROJECTOR_DB=.local/run/projections.sqlite3
export PYTHONUNBUFFERED=1
export DISPATCH_BIN="$(pwd)/.venv/bin"
# Status callbacks are signed: a fresh secret per run, shared by the simulator
# (the provider) and the gateway, which refuses unsigned ones.
export INBOUND_SIGNATURE_SECRET=${INBOUND_SIGNATURE_SECRET:-$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))')}
export SIMULATOR_SIGNATURE_SECRET=$INBOUND_SIGNATURE_SECRET
# Seals applications' signature secrets on the registry topic (fresh each run,
# like the topic itself).
export DISPATCH_SECRETS_KEYS=${DISPATCH_SECRETS_KEYS:-run=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))')}

# The broker starts from empty storage, so local state from a previous run
# would describe a log that no longer exists.
rm -rf .local/run
mkdir -p .local/run

broker/kafka.sh start
stop_all() {
  broker/kafka.sh stop
  # Anything a process left behind (it should be none) does not outlive the run.
  pkill -KILL -f "$DISPATCH_BIN/dispatch" 2>/dev/null || true
}
trap stop_all EXIT
.venv/bin/python -c "import asyncio; from services.kafka import KafkaSettings, ensure_topics; asyncio.run(ensure_topics(KafkaSettings.from_env()))"
# honcho runs in the background so that this script stays in charge of the
# order of shutdown: first every process (honcho: SIGTERM, SIGKILL after 5 s),
# then the broker (the EXIT trap). A worker whose broker vanished first can
# hang instead of exiting.
.venv/bin/honcho -f scripts/Procfile start &
honcho_pid=$!
trap 'kill -TERM "$honcho_pid" 2>/dev/null || true' INT TERM
while kill -0 "$honcho_pid" 2>/dev/null; do
  wait "$honcho_pid" || true
done
