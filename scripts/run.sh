#!/usr/bin/env bash
# `make run`: a fresh local broker, every process, the simulator, the operator
# console and the demo, in the foreground. Ctrl-C stops them all, then the broker.
#
# The terminal shows the demo (timelines and the webhooks it receives); each
# process logs to its own file under .local/run/logs/. VERBOSE=1 shows every
# process's log in the terminal instead, prefixed by its name (honcho).
#
# Ports and the broker can be moved through the environment (GATEWAY_PORT,
# PROJECTOR_PORT, SIMULATOR_PORT, CONSOLE_PORT, DEMO_RECEIVER_PORT,
# PROCESSOR_METRICS_PORT, KAFKA_PORT; RUN_BROKER=0 uses the broker already at
# KAFKA_BOOTSTRAP and leaves it running).
set -euo pipefail
cd "$(dirname "$0")/.."

export KAFKA_PORT=${KAFKA_PORT:-9092}
export KAFKA_BOOTSTRAP=${KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}
export GATEWAY_PORT=${GATEWAY_PORT:-8080}
export PROJECTOR_PORT=${PROJECTOR_PORT:-8070}
export SIMULATOR_PORT=${SIMULATOR_PORT:-8090}
export CONSOLE_PORT=${CONSOLE_PORT:-8060}
export DEMO_RECEIVER_PORT=${DEMO_RECEIVER_PORT:-8099}
export PROCESSOR_METRICS_PORT=${PROCESSOR_METRICS_PORT:-9102}
export PROVIDER_BASE_URL=${PROVIDER_BASE_URL:-http://127.0.0.1:$SIMULATOR_PORT}
export SIMULATOR_CALLBACK_URL=${SIMULATOR_CALLBACK_URL:-http://127.0.0.1:$GATEWAY_PORT/v0.1/status}
export PROJECTOR_URL=${PROJECTOR_URL:-http://127.0.0.1:$PROJECTOR_PORT}
export DEMO_GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT
export CONSOLE_URL=http://127.0.0.1:$CONSOLE_PORT/console
# Operators sign in to the console with this; a fresh one each run unless set.
export CONSOLE_TOKEN=${CONSOLE_TOKEN:-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')}
export WEBHOOK_ALLOW_PRIVATE=1   # the demo receiver listens on loopback
run_dir=${RUN_DIR:-.local/run}
export PROCESSOR_DATA_DIR=$run_dir/processor
export PROJECTOR_DB=$run_dir/projections.sqlite3
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
rm -rf "$run_dir"
mkdir -p "$run_dir/logs"

if [ "${RUN_BROKER:-1}" = 1 ]; then
  broker/kafka.sh start
  trap 'broker/kafka.sh stop' EXIT
fi
.venv/bin/python scripts/prepare_topics.py

if [ "${VERBOSE:-}" = 1 ]; then
  # honcho runs in the background so that this script stays in charge of the
  # order of shutdown: first every process (honcho: SIGTERM, SIGKILL after
  # 5 s), then the broker (the EXIT trap). A worker whose broker vanished first
  # can hang instead of exiting.
  .venv/bin/honcho -f scripts/Procfile start &
  supervisor_pid=$!
else
  .venv/bin/python scripts/supervise.py scripts/Procfile "$run_dir/logs" demo &
  supervisor_pid=$!
fi
trap 'kill -TERM "$supervisor_pid" 2>/dev/null || true' INT TERM
status=0
while kill -0 "$supervisor_pid" 2>/dev/null; do
  wait "$supervisor_pid" || status=$?
done
exit "$status"
