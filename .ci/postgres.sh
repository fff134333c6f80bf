#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests: `source .ci/postgres.sh` (CI does) or
# `eval "$(.ci/postgres.sh --print)"` by hand. Installs PostgreSQL from Debian if missing,
# initialises a cluster in a temporary directory as the postgres user (fsync off: the tests
# never survive a power cut), listens on a Unix socket only, and exports
# AGGREGATE_TEST_POSTGRES, the connection string the tests use. `pg_stop` stops it; CI
# calls it on exit.
set -euo pipefail

pg_bin() {
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return
        fi
    done
}

if [ -z "$(pg_bin)" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN="$(pg_bin)"
PG_DIR="$(mktemp -d /tmp/aggregate-pg.XXXXXX)"
# The cluster runs as an unprivileged user: PostgreSQL refuses to run as root.
PG_USER=postgres
if [ "$(id -u)" != 0 ]; then
    PG_USER="$(id -un)"
fi
chown "$PG_USER" "$PG_DIR"
as_pg() {
    if [ "$(id -un)" = "$PG_USER" ]; then "$@"; else runuser -u "$PG_USER" -- "$@"; fi
}
as_pg "$PG_BIN/initdb" --no-sync -A trust -U aggregate -D "$PG_DIR/data" >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w start \
    -o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null
as_pg "$PG_BIN/createdb" -h "$PG_DIR" -U aggregate aggregate
export AGGREGATE_TEST_POSTGRES="host=$PG_DIR user=aggregate dbname=aggregate"
export PG_DIR PG_BIN PG_USER

pg_stop() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}

if [ "${1:-}" = "--print" ]; then
    echo "export AGGREGATE_TEST_POSTGRES='$AGGREGATE_TEST_POSTGRES'"
    echo "# stop with: runuser -u $PG_USER -- $PG_BIN/pg_ctl -D $PG_DIR/data stop"
fi
