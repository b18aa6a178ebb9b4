#!/usr/bin/env bash
# Local PostgreSQL on 127.0.0.1:5432 for wirewatch.
#
# Owns: starting/stopping the Debian cluster that listens on port 5432
# (installing Debian's `postgresql` package first if no server is
# installed), and the wirewatch roles and database:
#   role wirewatch        / password wirewatch        LOGIN CREATEDB (tests
#                                                     create their own databases)
#   role wirewatch_reader / password wirewatch_reader LOGIN, no privileges yet
#   role wirewatch_sink   / password wirewatch_sink   LOGIN, writes granted by `wirewatch migrate`
#                                                     (migrations grant SELECT)
#   database wirewatch owned by wirewatch
# Does not own the server's data or config beyond that: a server that already
# answers on 127.0.0.1:5432 is reused as is, whoever started it.
#
# Usage: deploy/local/postgres.sh {start|stop|status}
#   start   idempotent; returns once wirewatch can log in over TCP
#   stop    fast shutdown of the cluster on port 5432 (clients are disconnected)
#   status  exit 0 if the server answers on 127.0.0.1:5432, 3 if not
#
# Environment (all optional):
#   WIREWATCH_STATE_DIR          default <repo>/.state (only the lock lives here)
#   WIREWATCH_PG_ADMIN_URL       superuser URL, for a server where the local
#                                `postgres` OS user cannot connect (default:
#                                peer auth as `postgres` over the Unix socket)
#   WIREWATCH_PG_START_TIMEOUT   seconds to wait for the server (default 60)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${WIREWATCH_STATE_DIR:-$REPO/.state}/postgres"
HOST=127.0.0.1
PORT=5432
START_TIMEOUT="${WIREWATCH_PG_START_TIMEOUT:-60}"

say() { echo "postgres: $*"; }
die() { echo "postgres: ERROR: $*" >&2; exit 1; }

tcp_ready() { pg_isready -q -h "$HOST" -p "$PORT" -t 2 2>/dev/null; }

lock() {
    mkdir -p "$STATE"
    # Serialises concurrent start/stop; the postmaster must not inherit fd 9.
    exec 9>"$STATE/postgres.lock"
    flock 9
}

have_server_packages() {
    command -v pg_lsclusters >/dev/null && command -v pg_ctlcluster >/dev/null &&
        compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

ensure_packages() {
    have_server_packages && return
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL is not installed and installing it needs root (apt-get install -y postgresql)"
    say "installing Debian's postgresql package"
    mkdir -p "$STATE"
    local log="$STATE/apt.log"
    # The package's postinst creates (and may start) cluster main on 5432.
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } >"$log" 2>&1 9>&-; then
        tail -n 30 "$log" >&2
        die "apt-get install postgresql failed (full output: $log)"
    fi
    have_server_packages || die "postgresql installed but no server binaries found"
}

# Prints "<version> <name> <status> <logfile>" of the cluster configured for
# $PORT, or nothing.
cluster_on_port() {
    command -v pg_lsclusters >/dev/null || return 0
    pg_lsclusters -h 2>/dev/null | awk -v port="$PORT" '$3 == port { print $1, $2, $4, $7; exit }'
}

newest_server_version() {
    local d
    for d in /usr/lib/postgresql/*/bin/postgres; do
        d="${d#/usr/lib/postgresql/}"
        echo "${d%%/*}"
    done | sort -n | tail -n1
}

ensure_cluster() {
    [[ -n $(cluster_on_port) ]] && return
    local ver name=main
    ver="$(newest_server_version)"
    [[ -d /etc/postgresql/$ver/main ]] && name=wirewatch
    say "no cluster on port $PORT; creating $ver/$name"
    pg_createcluster "$ver" "$name" --port "$PORT" >/dev/null 9>&-
}

# 0: answers on 127.0.0.1; 2: only on the Unix socket (for ~2 s, so not just
# a race with startup); 1: neither within the bound.
wait_up() {
    local deadline=$((SECONDS + START_TIMEOUT)) socket_only=0
    while true; do
        tcp_ready && return 0
        if pg_isready -q -p "$PORT" -t 2 2>/dev/null && ((++socket_only >= 4)); then
            return 2
        fi
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

start_cluster() {
    local ver name status log
    read -r ver name status log <<<"$(cluster_on_port)"
    if [[ $status != online ]]; then
        say "starting cluster $ver/$name"
        pg_ctlcluster "$ver" "$name" start 9>&- || {
            tail -n 20 "$log" >&2 2>/dev/null || true
            die "pg_ctlcluster $ver $name start failed (log: $log)"
        }
    fi
    local rc=0
    wait_up || rc=$?
    if ((rc == 2)); then
        # Up on the Unix socket only: listen_addresses was changed. Put the
        # Debian default back so 127.0.0.1 works.
        say "cluster $ver/$name does not listen on $HOST; setting listen_addresses=localhost"
        pg_conftool "$ver" "$name" set listen_addresses localhost
        pg_ctlcluster "$ver" "$name" restart 9>&-
        rc=0
        wait_up || rc=$?
    fi
    if ((rc != 0)); then
        tail -n 20 "$log" >&2 2>/dev/null || true
        die "no answer on $HOST:$PORT (log: $log)"
    fi
}

# psql as a superuser: an explicit URL, else the `postgres` OS user over the
# Unix socket (peer auth, Debian's default). `cd /` because postgres cannot
# read most callers' working directories.
admin_psql() {
    if [[ -n ${WIREWATCH_PG_ADMIN_URL:-} ]]; then
        psql -X -q -v ON_ERROR_STOP=1 "$WIREWATCH_PG_ADMIN_URL" "$@"
    elif [[ $(id -un) == postgres ]]; then
        (cd / && psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres "$@")
    elif [[ $(id -u) -eq 0 ]] && id postgres >/dev/null 2>&1; then
        (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres "$@")
    else
        return 1
    fi
}

# Idempotent: roles get their passwords and attributes re-asserted every
# time, so a role created by hand with another password is brought back to
# the contract.
ensure_roles_and_db() {
    if ! admin_psql -c 'select 1' >/dev/null 2>&1; then
        if wirewatch_can_login; then
            say "WARNING: no superuser access (set WIREWATCH_PG_ADMIN_URL); assuming roles exist"
            return
        fi
        die "cannot connect as a superuser to create roles; set WIREWATCH_PG_ADMIN_URL"
    fi
    admin_psql >/dev/null <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wirewatch') THEN
        CREATE ROLE wirewatch;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wirewatch_reader') THEN
        CREATE ROLE wirewatch_reader;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wirewatch_sink') THEN
        CREATE ROLE wirewatch_sink;
    END IF;
END
$$;
ALTER ROLE wirewatch WITH LOGIN CREATEDB NOSUPERUSER PASSWORD 'wirewatch';
ALTER ROLE wirewatch_reader WITH LOGIN NOCREATEDB NOSUPERUSER PASSWORD 'wirewatch_reader';
-- The sink's least-privilege role: `wirewatch migrate` lets it write its tables and nothing else.
ALTER ROLE wirewatch_sink WITH LOGIN NOCREATEDB NOCREATEROLE NOSUPERUSER PASSWORD 'wirewatch_sink';
SELECT 'CREATE DATABASE wirewatch OWNER wirewatch'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'wirewatch')
\gexec
ALTER DATABASE wirewatch OWNER TO wirewatch;
GRANT CONNECT ON DATABASE wirewatch TO wirewatch_reader;
GRANT CONNECT ON DATABASE wirewatch TO wirewatch_sink;
SQL
}

wirewatch_can_login() {
    PGPASSWORD=wirewatch PGCONNECT_TIMEOUT=5 psql -X -q -At -h "$HOST" -p "$PORT" \
        -U wirewatch -d wirewatch -c 'select 1' >/dev/null 2>&1
}

print_logs_hint() {
    local ver name status log
    read -r ver name status log <<<"$(cluster_on_port)"
    if [[ -n $ver && $status == online ]]; then
        say "logs: $log (cluster $ver/$name)"
    else
        say "logs: wherever the owner of the server on $HOST:$PORT put them (not a cluster managed here)"
    fi
}

cmd_start() {
    lock
    if tcp_ready; then
        say "already answering on $HOST:$PORT; reusing it"
    else
        ensure_packages
        ensure_cluster
        start_cluster
    fi
    ensure_roles_and_db
    wirewatch_can_login ||
        die "wirewatch cannot log in over TCP on $HOST:$PORT (check pg_hba.conf allows password auth from 127.0.0.1)"
    say "ready on $HOST:$PORT (database wirewatch, roles wirewatch, wirewatch_reader, wirewatch_sink)"
    print_logs_hint
}

cmd_stop() {
    lock
    local ver name status log
    read -r ver name status log <<<"$(cluster_on_port)"
    if [[ -n $ver && $status == online ]]; then
        say "stopping cluster $ver/$name"
        pg_ctlcluster "$ver" "$name" stop -m fast 9>&-
        say "stopped"
    elif tcp_ready; then
        say "not a cluster managed here; leaving whatever answers on $HOST:$PORT alone"
    else
        say "not running"
    fi
}

cmd_status() {
    if tcp_ready; then
        say "running on $HOST:$PORT"
        print_logs_hint
        return 0
    fi
    say "not running"
    return 3
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: $0 {start|stop|status}" >&2
    exit 2
    ;;
esac
