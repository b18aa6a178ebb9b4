#!/usr/bin/env bash
# Local single-node Kafka (KRaft, broker+controller) on 127.0.0.1:9092.
#
# Owns: the jar cache (<repo>/.cache/kafka/libs, fetched from Maven Central
# with deploy/local/kafka/pom.xml), and everything under <repo>/.state/kafka/:
# data (log.dirs), logs, the rendered server.properties, the pid file.
# Does not own a broker it did not start: if something already answers on
# 127.0.0.1:9092, `start` reuses it and `stop` leaves it alone.
#
# Usage: deploy/local/kafka.sh {start|stop|status}
#   start   idempotent; returns once the broker answers (or fails after a bound)
#   stop    SIGTERM, wait, then SIGKILL; data is kept for the next start
#   status  exit 0 if the broker answers, 3 if not
#
# Environment (all optional):
#   WIREWATCH_STATE_DIR            default <repo>/.state
#   WIREWATCH_CACHE_DIR            default <repo>/.cache
#   WIREWATCH_KAFKA_START_TIMEOUT  seconds to wait for readiness (default 90)
#   WIREWATCH_KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM (default 60)
#   KAFKA_HEAP_OPTS                default "-Xmx512m -Xms256m"
#   JAVA_HOME                      java to use (default: java on PATH)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CONF_SRC="$HERE/kafka"
STATE_ROOT="${WIREWATCH_STATE_DIR:-$REPO/.state}"
CACHE_ROOT="${WIREWATCH_CACHE_DIR:-$REPO/.cache}"
STATE="$STATE_ROOT/kafka"
DATA="$STATE/data"
LOGS="$STATE/logs"
PROPS="$STATE/server.properties"
PIDFILE="$STATE/kafka.pid"
LIBS="$CACHE_ROOT/kafka/libs"
HOST=127.0.0.1
PORT=9092
START_TIMEOUT="${WIREWATCH_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${WIREWATCH_KAFKA_STOP_TIMEOUT:-60}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
READY_LINE="Kafka Server started"

say() { echo "kafka: $*"; }
die() { echo "kafka: ERROR: $*" >&2; exit 1; }

port_answers() {
    # bash's /dev/tcp; the timeout guards against a half-open listener.
    timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$PORT" 2>/dev/null
}

# Our broker's pid, or nothing. The pid file alone is not trusted (pids are
# reused after a reboot): the process must be a kafka.Kafka on our config.
our_pid() {
    local pid
    if [[ -r $PIDFILE ]]; then
        pid="$(<"$PIDFILE")"
        if [[ $pid =~ ^[0-9]+$ ]] && is_our_broker "$pid"; then
            echo "$pid"
            return
        fi
    fi
    # Pid file lost (e.g. .state cleaned while running): look for our config
    # path on a java command line, so we never start a second broker on the
    # same data dir.
    local f
    while IFS= read -r f; do
        pid="${f#/proc/}"
        pid="${pid%/cmdline}"
        if is_our_broker "$pid"; then
            echo "$pid" >"$PIDFILE" 2>/dev/null || true
            echo "$pid"
            return
        fi
    done < <(grep -slF -- "$PROPS" /proc/[0-9]*/cmdline 2>/dev/null)
}

is_our_broker() {
    local cmd
    cmd="$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null)" || return 1
    [[ $cmd == *" kafka.Kafka $PROPS"* ]]
}

need_root_for() {
    [[ $(id -u) -eq 0 ]] || die "$1 is missing and installing it needs root (apt-get install -y $2)"
}

java_bin() {
    if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
        echo "$JAVA_HOME/bin/java"
    else
        command -v java || true
    fi
}

ensure_java() {
    JAVA="$(java_bin)"
    if [[ -z $JAVA ]]; then
        need_root_for java openjdk-17-jre-headless
        say "installing openjdk-17-jre-headless"
        apt_install openjdk-17-jre-headless
        JAVA="$(java_bin)"
    fi
    local spec
    spec="$("$JAVA" -XshowSettings:properties -version 2>&1 |
        sed -n 's/^ *java\.specification\.version = //p')"
    # Kafka 4.x brokers need Java 17+.
    [[ ${spec%%.*} -ge 17 ]] 2>/dev/null || die "Kafka 4.x needs Java 17+, $JAVA is $spec"
}

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Fetch the jars once. They land in a temp dir first and are renamed into
# place, so an interrupted download never looks like a complete cache; the
# POM's hash is stored beside them so a version bump refetches.
ensure_jars() {
    local want have=""
    want="$(sha256sum "$CONF_SRC/pom.xml" | cut -d' ' -f1)"
    [[ -r $LIBS/.pom.sha256 ]] && have="$(<"$LIBS/.pom.sha256")"
    [[ -d $LIBS && $want == "$have" ]] && return
    if ! command -v mvn >/dev/null; then
        need_root_for mvn maven
        say "installing maven"
        apt_install maven
    fi
    say "fetching Kafka jars from Maven Central into $LIBS"
    local tmp="$LIBS.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if ! mvn -B -q -Dstyle.color=never -f "$CONF_SRC/pom.xml" \
        dependency:copy-dependencies -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
        cat "$tmp.log" >&2
        rm -rf "$tmp" "$tmp.log"
        die "mvn dependency:copy-dependencies failed"
    fi
    rm -f "$tmp.log"
    echo "$want" >"$tmp/.pom.sha256"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
}

render_config() {
    local tmpl
    tmpl="$(<"$CONF_SRC/server.properties.in")"
    printf '%s\n' "${tmpl//@DATA_DIR@/$DATA}" >"$PROPS.tmp"
    mv "$PROPS.tmp" "$PROPS"
}

java_cmd() {
    # shellcheck disable=SC2206  # HEAP_OPTS is deliberately word-split
    local heap=($HEAP_OPTS)
    printf '%s\0' "$JAVA" "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError -XX:ErrorFile="$LOGS/hs_err_pid%p.log" \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$CONF_SRC/log4j2.xml" \
        -Dkafka.logs.dir="$LOGS" -cp "$LIBS/*" "$@"
}

# Format the data dir once (a KRaft node refuses to start unformatted).
# --ignore-formatted makes a repeat harmless, but meta.properties lets us
# skip the extra JVM start entirely.
ensure_formatted() {
    [[ -f $DATA/meta.properties ]] && return
    local id
    if [[ -s $STATE/cluster.id ]]; then
        id="$(<"$STATE/cluster.id")"
    else
        id="$(run_java kafka.tools.StorageTool random-uuid | tail -n1)"
        [[ -n $id ]] || die "StorageTool random-uuid printed nothing"
        echo "$id" >"$STATE/cluster.id"
    fi
    say "formatting $DATA (cluster id $id)"
    run_java kafka.tools.StorageTool format --standalone -t "$id" -c "$PROPS" \
        --ignore-formatted >"$LOGS/format.log" 2>&1 ||
        { cat "$LOGS/format.log" >&2; die "StorageTool format failed"; }
}

run_java() {
    local -a cmd
    mapfile -d '' cmd < <(java_cmd "$@")
    "${cmd[@]}"
}

print_logs_hint() {
    say "logs: $LOGS/server.log (controller: $LOGS/controller.log, JVM stdout/stderr: $LOGS/kafka.out)"
}

# $1: byte offset where this start's part of server.log begins.
dump_logs() {
    echo "---- last lines of $LOGS/server.log (this start) ----" >&2
    { tail -c "+$(($1 + 1))" "$LOGS/server.log" | tail -n 40 >&2; } 2>/dev/null || true
    echo "---- last lines of $LOGS/kafka.out ----" >&2
    tail -n 20 "$LOGS/kafka.out" >&2 2>/dev/null || true
}

# Readiness needs both: the log line (written after the listeners are up and
# metadata is caught up) and the port, checked only in log written after
# `offset`, so a previous run's line doesn't count.
wait_ready() {
    local pid=$1 offset=$2 deadline=$((SECONDS + START_TIMEOUT)) size
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            dump_logs "$offset"
            die "broker (pid $pid) exited during startup"
        fi
        size="$(stat -c %s "$LOGS/server.log" 2>/dev/null || echo 0)"
        ((size < offset)) && offset=0 # rolled over: the new file is all ours
        if tail -c "+$((offset + 1))" "$LOGS/server.log" 2>/dev/null |
            grep -q "$READY_LINE" && port_answers; then
            return 0
        fi
        sleep 0.5
    done
    dump_logs "$offset"
    say "not ready after ${START_TIMEOUT}s; stopping it"
    stop_pid "$pid"
    exit 1
}

stop_pid() {
    local pid=$1 deadline=$((SECONDS + STOP_TIMEOUT))
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "pid $pid still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
            break
        fi
        sleep 0.2
    done
    rm -f "$PIDFILE"
}

lock() {
    mkdir -p "$STATE" "$DATA" "$LOGS"
    # Serialises concurrent start/stop (e.g. parallel test runs). The broker
    # must not inherit fd 9, or it would hold the lock for its lifetime.
    exec 9>"$STATE/kafka.lock"
    flock 9
}

cmd_start() {
    lock
    local pid
    pid="$(our_pid)"
    if [[ -z $pid ]] && port_answers; then
        say "something already answers on $HOST:$PORT (not started by this script); using it"
        return 0
    fi
    if [[ -n $pid ]] && port_answers; then
        say "already running (pid $pid) on $HOST:$PORT"
        print_logs_hint
        return 0
    fi
    if [[ -n $pid ]]; then
        # Another start launched it (or it is recovering); don't touch its
        # jars or config, just wait.
        say "pid $pid is starting; waiting for it"
        wait_ready "$pid" 0
    else
        ensure_java
        ensure_jars
        render_config
        ensure_formatted
        local offset
        offset="$(stat -c %s "$LOGS/server.log" 2>/dev/null || echo 0)"
        local -a cmd
        mapfile -d '' cmd < <(java_cmd kafka.Kafka "$PROPS")
        rm -f "$PIDFILE" # stale; the child writes a fresh one
        # setsid: own session, so Ctrl-C or a test runner killing its process
        # group does not take the broker down. All fds are redirected so a
        # caller capturing our output is not held open by the broker;
        # kafka.out only catches what log4j cannot (JVM errors), one run's worth.
        # shellcheck disable=SC2016  # $$ is for the child shell
        (cd "$STATE" && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" "${cmd[@]}") \
            </dev/null >"$LOGS/kafka.out" 2>&1 9>&- &
        # The child writes its own pid (it then execs java, keeping it).
        local tries=50
        while [[ ! -s $PIDFILE ]] && ((tries-- > 0)); do sleep 0.1; done
        [[ -s $PIDFILE ]] || { cat "$LOGS/kafka.out" >&2; die "broker did not launch"; }
        pid="$(<"$PIDFILE")"
        say "started pid $pid; waiting up to ${START_TIMEOUT}s for $HOST:$PORT"
        wait_ready "$pid" "$offset"
    fi
    say "ready on $HOST:$PORT (pid $pid, data in $DATA)"
    print_logs_hint
}

cmd_stop() {
    lock
    local pid
    pid="$(our_pid)"
    if [[ -z $pid ]]; then
        rm -f "$PIDFILE"
        if port_answers; then
            say "not started by this script; leaving whatever answers on $HOST:$PORT alone"
        else
            say "not running"
        fi
        return 0
    fi
    say "stopping pid $pid"
    stop_pid "$pid"
    say "stopped (data kept in $DATA)"
}

cmd_status() {
    local pid
    pid="$(our_pid)"
    if port_answers; then
        if [[ -n $pid ]]; then
            say "running (pid $pid) on $HOST:$PORT"
            print_logs_hint
        else
            say "something answers on $HOST:$PORT (not started by this script)"
        fi
        return 0
    fi
    if [[ -n $pid ]]; then
        say "pid $pid is alive but $HOST:$PORT does not answer (starting?)"
    else
        say "not running"
    fi
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
