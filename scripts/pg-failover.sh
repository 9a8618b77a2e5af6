#!/usr/bin/env bash
# A PostgreSQL primary with a synchronous streaming standby on loopback, for the failover drill
# (docs/deployment.md, "Database failover"; ClusterTests.aPrimaryLostUnderLoadIsReplacedByItsStandby).
#
#   eval "$(scripts/pg-failover.sh start)"     # prints: export UWF_FAILOVER_DIR=... UWF_PRIMARY_PORT=... UWF_STANDBY_PORT=...
#   scripts/pg-failover.sh kill-primary DIR    # the primary dies (stop -m immediate: no shutdown checkpoint)
#   scripts/pg-failover.sh promote DIR         # the standby becomes the primary
#   scripts/pg-failover.sh stop DIR
#
# Synchronous replication (synchronous_standby_names = '*', synchronous_commit = on): the primary acknowledges a
# commit only once the standby has it, so a promoted standby holds every commit any client was told about.
set -euo pipefail
log() { printf 'pg-failover: %s\n' "$*" >&2; }
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
[[ -n "$bin" && -x "$bin/initdb" ]] || { log "PostgreSQL is not installed (scripts/test-postgres.sh installs it)"; exit 1; }
if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi
free_port() {
    local port=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

case "${1:-start}" in
start)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/uwf-failover.XXXXXX")
    chmod 755 "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    cd "$dir"
    primary=$(free_port 56432)
    as_pg "$bin/initdb" -D "$dir/primary" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$dir/primary/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $primary
unix_socket_directories = '$dir'
max_connections = 200
wal_level = replica
max_wal_senders = 5
wal_keep_size = 256MB
synchronous_standby_names = '*'
synchronous_commit = on
hot_standby = on
CONF
    echo "host replication postgres 127.0.0.1/32 trust" >>"$dir/primary/pg_hba.conf"
    as_pg "$bin/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w -t 60 start >&2
    standby=$(free_port $((primary + 1)))
    # A copy of the primary that follows it (-R writes primary_conninfo and standby.signal).
    as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary" -U postgres -D "$dir/standby" -R -X stream >&2
    sed -i "s/^port = .*/port = $standby/" "$dir/standby/postgresql.conf"
    echo "primary_conninfo = 'host=127.0.0.1 port=$primary user=postgres application_name=standby'" >>"$dir/standby/postgresql.auto.conf"
    as_pg "$bin/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w -t 60 start >&2
    for _ in $(seq 1 100); do
        state=$(as_pg "$bin/psql" -h 127.0.0.1 -p "$primary" -U postgres -Atc "SELECT sync_state FROM pg_stat_replication" postgres || true)
        [[ "$state" == sync ]] && break
        sleep 0.1
    done
    [[ "$state" == sync ]] || { log "the standby is not in synchronous replication (state '$state')"; exit 1; }
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$primary" -U postgres uwf
    log "primary on 127.0.0.1:$primary, synchronous standby on 127.0.0.1:$standby (data in $dir)"
    echo "export UWF_FAILOVER_DIR=$dir UWF_PRIMARY_PORT=$primary UWF_STANDBY_PORT=$standby"
    ;;
kill-primary)
    dir=${2:?give the directory printed by start}
    as_pg "$bin/pg_ctl" -D "$dir/primary" -m immediate -w -t 30 stop >&2
    ;;
promote)
    dir=${2:?give the directory printed by start}
    as_pg "$bin/pg_ctl" -D "$dir/standby" -w -t 60 promote >&2
    # The new primary has no standby of its own yet: still requiring a synchronous one, every commit would wait for
    # ever. Run without until a new standby is built (what a failover manager such as Patroni does; the window with
    # no second copy is the price of staying up).
    port=$(sed -n 's/^port = //p' "$dir/standby/postgresql.conf" | tail -n 1)
    as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -Atc "ALTER SYSTEM SET synchronous_standby_names = ''" postgres >&2
    as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -Atc "SELECT pg_reload_conf()" postgres >/dev/null
    ;;
stop)
    dir=${2:?give the directory printed by start}
    for node in primary standby; do
        [[ -f "$dir/$node/postmaster.pid" ]] && as_pg "$bin/pg_ctl" -D "$dir/$node" -m fast -w -t 30 stop >&2 || true
    done
    [[ $(basename "$dir") == uwf-failover.* ]] && rm -rf "$dir"
    ;;
*) log "usage: $0 start | kill-primary DIR | promote DIR | stop DIR"; exit 2 ;;
esac
