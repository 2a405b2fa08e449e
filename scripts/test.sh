#!/usr/bin/env bash
# `make test`: lint, then a fresh broker on its own port, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export KAFKA_PORT=${TEST_KAFKA_PORT:-19092}
export KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT

echo "== lint"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

echo "== browser"
scripts/ensure-chromium.sh

echo "== broker"
broker/kafka.sh start
trap 'broker/kafka.sh stop' EXIT

echo "== postgres (the projection tests run on SQLite and on PostgreSQL)"
export POSTGRES_PORT=${TEST_POSTGRES_PORT:-$((KAFKA_PORT + 2))}
scripts/postgres.sh start
trap 'scripts/postgres.sh stop; broker/kafka.sh stop' EXIT
TEST_POSTGRES_URL=$(scripts/postgres.sh url)
export TEST_POSTGRES_URL

echo "== tests"
.venv/bin/pytest -p no:cacheprovider "$@"
