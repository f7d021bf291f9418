#!/usr/bin/env bash
# Local Redis and PostgreSQL for the tests (see docs/DEVELOPING.md, "Local services used by tests").
#
# Usage: scripts/services.sh install|start|stop|status
#
# Both services run on private ports with their data under /var/lib/cti-test, so Debian's own
# default instances (Redis 6379, the PostgreSQL "15/main" cluster on 5432) are never touched.
# Every command is idempotent and needs no stdin, so CI can run it on a fresh machine.
set -euo pipefail

readonly ROOT_DIR=/var/lib/cti-test
readonly REDIS_DIR=$ROOT_DIR/redis
readonly REDIS_HOST=127.0.0.1
readonly REDIS_PORT=56379
readonly PG_VERSION=15
readonly PG_BIN=/usr/lib/postgresql/$PG_VERSION/bin
readonly PG_DATA=$ROOT_DIR/pg
readonly PG_RUN=$ROOT_DIR/pg-run          # socket directory and server log, owned by postgres
readonly PG_LOG=$PG_RUN/postgres.log
readonly PG_HOST=127.0.0.1
readonly PG_PORT=55432
readonly PG_ROLE=cti
readonly PG_PASSWORD=cti
readonly PG_DATABASE=cti_test
readonly DEADLINE_SECONDS=${CTI_SERVICES_TIMEOUT:-30}

# The postgres user cannot enter root's home; running from / avoids "could not change directory".
cd /

die() {
    echo "services.sh: $*" >&2
    exit 1
}

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and switches to the postgres user)"
}

as_postgres() {
    runuser -u postgres -- "$@"
}

# Poll a readiness probe until it succeeds or the deadline passes; on failure show the log tail.
wait_until() {
    local what=$1 log=$2
    shift 2
    local deadline=$((SECONDS + DEADLINE_SECONDS))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "services.sh: $what not ready after ${DEADLINE_SECONDS}s; last lines of $log:" >&2
            tail -n 30 "$log" >&2 2>/dev/null || echo "(no log at $log)" >&2
            exit 1
        fi
        sleep 0.2
    done
}

# Poll until a probe FAILS (used when stopping), with the same deadline.
wait_while() {
    local what=$1
    shift
    local deadline=$((SECONDS + DEADLINE_SECONDS))
    while "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what still running after ${DEADLINE_SECONDS}s"
        sleep 0.2
    done
}

# --- install ------------------------------------------------------------------------------------

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
        # A fresh machine may have no (or stale) package lists: refresh once and retry.
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    fi
}

install_one() {
    local name=$1 probe=$2
    shift 2
    if [[ -x $probe ]]; then
        echo "$name: already installed ($probe)"
        return
    fi
    apt_install "$@"
    [[ -x $probe ]] || die "$name: installed $* but $probe is still missing"
    echo "$name: installed ($*)"
}

cmd_install() {
    need_root
    install_one redis /usr/bin/redis-server redis-server redis-tools
    install_one postgres "$PG_BIN/initdb" "postgresql-$PG_VERSION" postgresql-client-"$PG_VERSION"
    command -v runuser >/dev/null || die "runuser (util-linux) is missing"
}

# --- redis --------------------------------------------------------------------------------------

# Bounded: redis-cli has no read timeout, and something else squatting the port must not hang us.
redis_cli() {
    timeout 5 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" "$@"
}

redis_running() {
    [[ $(redis_cli ping 2>/dev/null) == PONG ]]
}

redis_start() {
    if redis_running; then
        echo "redis: already running on $REDIS_HOST:$REDIS_PORT"
        return
    fi
    mkdir -p "$REDIS_DIR"
    # No persistence: tests own their keys and a restart must start empty.
    redis-server --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no \
        --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
        --daemonize yes >/dev/null ||
        { tail -n 30 "$REDIS_DIR/redis.log" >&2 2>/dev/null || true; die "redis: redis-server failed to start"; }
    wait_until "redis on $REDIS_HOST:$REDIS_PORT" "$REDIS_DIR/redis.log" redis_running
    echo "redis: started on $REDIS_HOST:$REDIS_PORT (data $REDIS_DIR)"
}

redis_stop() {
    if ! redis_running; then
        echo "redis: not running"
        return
    fi
    redis_cli shutdown nosave >/dev/null 2>&1 || true
    wait_while "redis on $REDIS_HOST:$REDIS_PORT" redis_running
    echo "redis: stopped"
}

redis_status() {
    if redis_running; then
        echo "redis: running on $REDIS_HOST:$REDIS_PORT"
    else
        echo "redis: stopped"
        return 1
    fi
}

# --- postgresql ---------------------------------------------------------------------------------

pg_ready() {
    "$PG_BIN/pg_isready" -q -t 5 -h "$PG_HOST" -p "$PG_PORT"
}

pg_server_running() {
    [[ -f $PG_DATA/PG_VERSION ]] && as_postgres "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

# Create the cluster once; a half-made data directory (failed initdb) is ours to remove.
pg_init_once() {
    [[ -f $PG_DATA/PG_VERSION ]] && return
    id postgres >/dev/null 2>&1 || die "postgres: system user 'postgres' missing (run: $0 install)"
    rm -rf "$PG_DATA"
    install -d -m 755 "$ROOT_DIR"   # the postgres user must traverse it, whatever the caller's umask
    mkdir -p "$PG_DATA" "$PG_RUN"
    chown postgres:postgres "$PG_DATA" "$PG_RUN"
    chmod 700 "$PG_DATA"
    as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --encoding=UTF8 --no-locale \
        --auth-local=peer --auth-host=scram-sha-256 >"$PG_RUN/initdb.log" 2>&1 ||
        { tail -n 30 "$PG_RUN/initdb.log" >&2; die "postgres: initdb failed"; }
}

pg_launch() {
    mkdir -p "$PG_RUN"
    chown postgres:postgres "$PG_RUN"
    local opts="-c port=$PG_PORT -c listen_addresses=$PG_HOST -c unix_socket_directories=$PG_RUN"
    as_postgres "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -o "$opts" -w -t "$DEADLINE_SECONDS" \
        >/dev/null || { tail -n 30 "$PG_LOG" >&2 2>/dev/null || true; die "postgres: pg_ctl start failed"; }
    wait_until "postgres on $PG_HOST:$PG_PORT" "$PG_LOG" pg_ready
}

# Superuser work goes through the private socket with peer auth, so no superuser password exists.
pg_ensure_role_and_database() {
    as_postgres "$PG_BIN/psql" -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres -q -X \
        -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT format('CREATE ROLE %I LOGIN', '$PG_ROLE')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE')\gexec
ALTER ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_DATABASE', '$PG_ROLE')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DATABASE')\gexec
ALTER DATABASE $PG_DATABASE OWNER TO $PG_ROLE;
SQL
    # Prove the URL the tests use really works (TCP + password).
    PGPASSWORD=$PG_PASSWORD "$PG_BIN/psql" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_ROLE" -d "$PG_DATABASE" \
        -q -X -t -c 'SELECT 1' >/dev/null || die "postgres: cannot log in as $PG_ROLE to $PG_DATABASE"
}

pg_start() {
    [[ -x $PG_BIN/initdb ]] || die "postgres: $PG_BIN/initdb missing (run: $0 install)"
    local state=already
    pg_init_once
    if ! pg_server_running; then
        pg_launch
        state=started
    fi
    wait_until "postgres on $PG_HOST:$PG_PORT" "$PG_LOG" pg_ready
    pg_ensure_role_and_database
    if [[ $state == started ]]; then
        echo "postgres: started on $PG_HOST:$PG_PORT (cluster $PG_DATA, database $PG_DATABASE)"
    else
        echo "postgres: already running on $PG_HOST:$PG_PORT (database $PG_DATABASE)"
    fi
}

pg_stop() {
    if ! pg_server_running; then
        echo "postgres: not running"
        return
    fi
    as_postgres "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t "$DEADLINE_SECONDS" >/dev/null
    echo "postgres: stopped"
}

pg_status() {
    if pg_server_running && pg_ready; then
        echo "postgres: running on $PG_HOST:$PG_PORT"
    else
        echo "postgres: stopped"
        return 1
    fi
}

# --- commands -----------------------------------------------------------------------------------

cmd_start() {
    need_root
    redis_start
    pg_start
}

cmd_stop() {
    need_root
    redis_stop
    pg_stop
}

# Exit status 3 (LSB "not running") when any service is down, so CI can gate on it.
cmd_status() {
    local rc=0
    redis_status || rc=3
    pg_status || rc=3
    return "$rc"
}

main() {
    case ${1:-} in
        install) cmd_install ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        *)
            echo "usage: $0 install|start|stop|status" >&2
            exit 2
            ;;
    esac
}

main "$@"
