#!/usr/bin/env bash
# Local services for wirewatch: PostgreSQL and a single-node Kafka.
#
# Owns nothing itself: it runs deploy/local/postgres.sh and
# deploy/local/kafka.sh side by side (a cold start is mostly waiting, so
# running both at once roughly halves it), prefixes their output, and fails
# if either fails. State lives under <repo>/.state/ (see those scripts).
# `make up` / `make down` call this.
#
# Usage: deploy/local/services.sh {up|down|status}
#   up      start both (idempotent); returns when both answer
#   down    stop both (Kafka data is kept)
#   status  exit 0 if both answer, 3 otherwise
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# run_all VERB SERVICE...: run deploy/local/SERVICE.sh VERB for every service
# at once, each line of output marked with its service; returns the first
# non-zero status.
run_all() {
    local verb=$1
    shift
    local -a pids=()
    local svc
    for svc in "$@"; do
        (
            set +e
            # Their own lines already start with "<svc>:"; tag anything else
            # (tool output, log tails) so parallel output stays readable.
            bash "$HERE/$svc.sh" "$verb" 2>&1 | sed -u "/^$svc: /!s/^/[$svc] /"
            exit "${PIPESTATUS[0]}"
        ) &
        pids+=($!)
    done
    local -a names=("$@")
    local rc=0 i st
    for i in "${!pids[@]}"; do
        st=0
        wait "${pids[$i]}" || st=$?
        if ((st != 0)); then
            [[ $verb == status ]] ||
                echo "[${names[$i]}] $verb exited with status $st" >&2
            ((rc == 0)) && rc=$st
        fi
    done
    return "$rc"
}

case "${1:-}" in
up)
    started=$SECONDS
    run_all start postgres kafka
    echo "services up in $((SECONDS - started))s (Kafka 127.0.0.1:9092, PostgreSQL 127.0.0.1:5432)"
    ;;
down)
    run_all stop kafka postgres
    ;;
status)
    run_all status postgres kafka
    ;;
*)
    echo "usage: $0 {up|down|status}" >&2
    exit 2
    ;;
esac
