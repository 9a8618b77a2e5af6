#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on loopback for the test suite, or stops it.
#
#   eval "$(scripts/test-postgres.sh start)"   # prints: export UWF_TEST_POSTGRES_URL=... UWF_TEST_PG_DIR=...
#   swift test
#   scripts/test-postgres.sh stop "$UWF_TEST_PG_DIR"
#   scripts/test-postgres.sh restart "$UWF_TEST_PG_DIR" immediate 30   # down for 30 s, then back
#
# Installs PostgreSQL from Debian's packages when initdb is missing (needs root). PostgreSQL refuses to run
# as root, so as root the server runs as the `postgres` user in a temporary directory. Durability settings
# are PostgreSQL's defaults (fsync on): the tests exercise the real thing.
set -euo pipefail
log() { printf 'test-postgres: %s\n' "$*" >&2; }

find_bin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$d" && -x "$d/initdb" ]]; then echo "$d"; return 0; fi
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
    return 1
}

if ! bin=$(find_bin); then
    if [[ $(id -u) -ne 0 ]]; then log "PostgreSQL is not installed; run as root or: apt-get install postgresql"; exit 1; fi
    log "installing PostgreSQL from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    bin=$(find_bin) || { log "initdb still not found after installing"; exit 1; }
fi

if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

case "${1:-start}" in
stop)
    dir=${2:?give the directory printed by start}
    [[ -f "$dir/data/postmaster.pid" ]] && as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >&2 || true
    [[ $(basename "$dir") == uwf-test-pg.* ]] && rm -rf "$dir"
    exit 0
    ;;
restart | down | up)
    # Takes the server in DIR away and back, for tests of a database lost under load:
    #   restart DIR fast|immediate [SECONDS]   stop in that mode, stay down SECONDS (default 0), start again
    #   down DIR fast|immediate                stop;   up DIR   start again (same port and settings)
    dir=${2:?give the directory printed by start}
    if [[ $1 != up ]]; then as_pg "$bin/pg_ctl" -D "$dir/data" -m "${3:-fast}" -w -t 60 stop >&2; fi
    [[ $1 == restart ]] && sleep "${4:-0}"
    if [[ $1 != down ]]; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start >&2
    fi
    exit 0
    ;;
start) ;;
*) log "usage: $0 start | stop DIR | restart DIR fast|immediate [SECONDS] | down DIR fast|immediate | up DIR"; exit 2 ;;
esac

dir=$(mktemp -d "${TMPDIR:-/tmp}/uwf-test-pg.XXXXXX")
chmod 755 "$dir"
[[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
cd "$dir"
as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }

port=${UWF_TEST_PG_PORT:-55432}
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        options="-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c shared_buffers=256MB"
        echo "$options" >"$dir/options"
        if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$options" start >&2; then
            break
        fi
        grep -q 'could not bind\|could not create any TCP/IP sockets' "$dir/server.log" || { cat "$dir/server.log" >&2; exit 1; }
    fi
    [[ $attempt -eq 10 ]] && { log "no free port"; exit 1; }
    port=$((port + 1))
done
as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres uwf_test
log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir)"
echo "export UWF_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/uwf_test?sslmode=disable UWF_TEST_PG_DIR=$dir"
