#!/usr/bin/env bash
# apache-kafka.sh - a real Apache Kafka 4.x (KRaft) on loopback, resolved from Maven Central.
#
# Usage:
#   deploy/kafka/apache-kafka.sh fetch             resolve the broker and its runtime jars (cached)
#   deploy/kafka/apache-kafka.sh start             one combined broker+controller node
#   deploy/kafka/apache-kafka.sh stop              stop the node(s) this script started
#   deploy/kafka/apache-kafka.sh status            show the node(s) of KAFKA_DATA_DIR
#   deploy/kafka/apache-kafka.sh cluster-start [N] N combined nodes (3 voters), default N=3
#   deploy/kafka/apache-kafka.sh cluster-stop      stop the cluster's nodes
#
# Environment (all optional):
#   KAFKA_VERSION        Kafka release to run (4.x), default 4.1.1.
#   ACCESSWATCH_CACHE    cache root, default $HOME/.cache/accesswatch. The jars go to
#                        $ACCESSWATCH_CACHE/kafka-$KAFKA_VERSION/lib (a second fetch reuses them
#                        without touching the network).
#   KAFKA_DATA_DIR       where the node(s) keep their state, logs and pid files, default
#                        $ACCESSWATCH_CACHE/kafka-$KAFKA_VERSION/data. An existing data dir is
#                        reused (a restart keeps the topics and their messages).
#   KAFKA_PORT           client (PLAINTEXT) port of the single node, or of the cluster's first
#                        node, default 19092. The cluster uses KAFKA_PORT..KAFKA_PORT+N-1 for
#                        clients and KAFKA_PORT+N..KAFKA_PORT+2N-1 for its controllers.
#   KAFKA_CONTROLLER_PORT controller port of the single node, default the first free port above
#                        KAFKA_PORT.
#   KAFKA_HEAP_OPTS      JVM heap flags per node, default "-Xms256m -Xmx512m".
#   KAFKA_JVM_OPTS       other JVM flags per node, default G1 with short pauses.
#   KAFKA_START_TIMEOUT  seconds to wait for the node(s) to serve clients, default 180.
#   KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL, default 60.
#   KAFKA_WATCH_PID      if set, a watcher stops the started node(s) when this process exits
#                        (test harnesses pass their own pid so no broker outlives them).
#   JAVA, MVN            the java (17+) and mvn commands, default "java" and "mvn".
#
# All listeners bind to 127.0.0.1 only. Exit status: 0 on success; 1 with one error line on
# stderr otherwise; `status` exits 0 when every node runs, 1 when some do, 3 when none does.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="apache-kafka.sh"

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
CACHE_ROOT="${ACCESSWATCH_CACHE:-${HOME:-/tmp}/.cache/accesswatch}"
KAFKA_HOME_DIR="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIB_DIR="$KAFKA_HOME_DIR/lib"
DATA_DIR="${KAFKA_DATA_DIR:-$KAFKA_HOME_DIR/data}"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-180}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-60}"
LOG4J_CONFIG="$SCRIPT_DIR/log4j2.properties"
POM_TEMPLATE="$SCRIPT_DIR/pom.xml.in"
# Used when the resolved broker brings no log4j-api of its own.
DEFAULT_LOG4J_VERSION="2.24.3"
READY_LINE="Kafka Server started"
# The short-lived tool JVMs (random-uuid, format) start faster with C1 only and the serial GC.
TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1)

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

info() {
    echo "$PROG: $*"
}

is_uint() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

check_settings() {
    [[ "$KAFKA_VERSION" =~ ^4\.[0-9]+\.[0-9]+$ ]] ||
        die "KAFKA_VERSION='$KAFKA_VERSION' is not a Kafka 4.x release (e.g. 4.1.1)"
    is_uint "$START_TIMEOUT" || die "KAFKA_START_TIMEOUT='$START_TIMEOUT' is not a number of seconds"
    is_uint "$STOP_TIMEOUT" || die "KAFKA_STOP_TIMEOUT='$STOP_TIMEOUT' is not a number of seconds"
    [[ -z "${KAFKA_PORT:-}" ]] || check_port KAFKA_PORT "$KAFKA_PORT"
    [[ -z "${KAFKA_CONTROLLER_PORT:-}" ]] || check_port KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
    if [[ -n "${KAFKA_WATCH_PID:-}" ]]; then
        is_uint "$KAFKA_WATCH_PID" || die "KAFKA_WATCH_PID='$KAFKA_WATCH_PID' is not a pid"
    fi
}

check_port() {  # check_port NAME VALUE
    # shellcheck disable=SC2015  # die when either test fails
    is_uint "$2" && (($2 >= 1 && $2 <= 65535)) || die "$1='$2' is not a TCP port (1-65535)"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# fetch

need_java() {
    command -v "$JAVA" >/dev/null 2>&1 ||
        die "java not found: Kafka $KAFKA_VERSION needs Java 17+ (apt-get install openjdk-17-jre-headless, or set JAVA)"
    local line major
    line="$("$JAVA" -version 2>&1 | sed -n 1p)"
    major="$(sed -n 's/.*version "\([0-9]*\)[."].*/\1/p' <<<"$line")"
    [[ "$major" == 1 ]] && major="$(sed -n 's/.*version "1\.\([0-9]*\).*/\1/p' <<<"$line")"
    is_uint "${major:-x}" || die "cannot tell the Java version from: $line"
    ((major >= 17)) || die "Kafka $KAFKA_VERSION needs Java 17+, $JAVA is Java $major"
}

render_pom() {  # render_pom EXTRA_DEPENDENCIES_XML > pom.xml
    local tpl
    [[ -f "$POM_TEMPLATE" ]] || die "missing $POM_TEMPLATE"
    tpl="$(<"$POM_TEMPLATE")"
    tpl="${tpl//@KAFKA_VERSION@/$KAFKA_VERSION}"
    tpl="${tpl//@EXTRA_DEPENDENCIES@/$1}"
    printf '%s\n' "$tpl"
}

run_mvn() {  # run_mvn POM OUTPUT_DIR
    local out
    if ! out="$("$MVN" -q -B -Dstyle.color=never -f "$1" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$2" 2>&1)"; then
        printf '%s\n' "$out" | sed 's/\x1b\[[0-9;]*m//g' | tail -n 15 >&2
        die "fetch failed: mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (offline, or Maven Central unreachable?)"
    fi
}

jar_version() {  # jar_version DIR ARTIFACT -> the version of DIR/ARTIFACT-<version>.jar
    local f
    for f in "$1/$2"-[0-9]*.jar; do
        [[ -e "$f" ]] || continue
        f="${f##*/}"
        f="${f#"$2"-}"
        printf '%s\n' "${f%.jar}"
        return 0
    done
    return 0
}

dependency_xml() {  # dependency_xml GROUP ARTIFACT VERSION
    printf '    <dependency>\n      <groupId>%s</groupId>\n      <artifactId>%s</artifactId>\n' "$1" "$2"
    printf '      <version>%s</version>\n    </dependency>\n' "$3"
}

cmd_fetch() {
    if [[ -f "$LIB_DIR/.complete" ]]; then
        info "Kafka $KAFKA_VERSION: using cached jars in $LIB_DIR"
        return 0
    fi
    command -v "$MVN" >/dev/null 2>&1 ||
        die "mvn not found: fetch resolves Kafka from Maven Central with Maven (apt-get install maven, or set MVN)"
    mkdir -p "$KAFKA_HOME_DIR"
    # Two fetches at once (two test sessions) must not interleave.
    exec 9>"$KAFKA_HOME_DIR/.fetch.lock"
    if command -v flock >/dev/null 2>&1; then
        flock 9
    fi
    if [[ -f "$LIB_DIR/.complete" ]]; then
        exec 9>&-
        info "Kafka $KAFKA_VERSION: using cached jars in $LIB_DIR"
        return 0
    fi
    info "Kafka $KAFKA_VERSION: resolving the broker and its runtime dependencies with Maven"
    local work="$KAFKA_HOME_DIR/lib.partial" pom="$KAFKA_HOME_DIR/pom.xml"
    rm -rf "$work"
    mkdir -p "$work"

    # 1. The broker alone: tells which slf4j and log4j versions it was built against.
    render_pom "" >"$pom"
    run_mvn "$pom" "$work"
    [[ -f "$work/kafka_2.13-$KAFKA_VERSION.jar" ]] ||
        die "fetch failed: kafka_2.13-$KAFKA_VERSION.jar is not among the resolved jars"
    local slf4j log4j bridge
    slf4j="$(jar_version "$work" slf4j-api)"
    log4j="$(jar_version "$work" log4j-api)"
    log4j="${log4j:-$DEFAULT_LOG4J_VERSION}"
    case "$slf4j" in
        1.*) bridge="log4j-slf4j-impl" ;;   # slf4j 1.x binding
        *) bridge="log4j-slf4j2-impl" ;;    # slf4j 2.x provider
    esac

    # 2. Add a log4j2 backend and the slf4j bridge that matches; without them the broker is mute.
    render_pom "$(dependency_xml org.apache.logging.log4j log4j-core "$log4j")
$(dependency_xml org.apache.logging.log4j "$bridge" "$log4j")" >"$pom"
    run_mvn "$pom" "$work"
    [[ -f "$work/log4j-core-$log4j.jar" && -f "$work/$bridge-$log4j.jar" ]] ||
        die "fetch failed: log4j-core/$bridge $log4j missing after resolution"

    printf 'kafka=%s slf4j=%s log4j=%s bridge=%s\n' \
        "$KAFKA_VERSION" "${slf4j:-none}" "$log4j" "$bridge" >"$work/.complete"
    rm -rf "$LIB_DIR"
    mv "$work" "$LIB_DIR"
    exec 9>&-  # the brokers started next must not inherit the lock
    info "Kafka $KAFKA_VERSION: $(find "$LIB_DIR" -name '*.jar' | wc -l) jars in $LIB_DIR" \
        "(slf4j ${slf4j:-none} via $bridge $log4j)"
}

# ---------------------------------------------------------------------------------------------
# node helpers. Layout: $DATA_DIR/layout (mode, nodes), $DATA_DIR/cluster.id,
# $DATA_DIR/node-<id>/{server.properties,kraft/,logs/,kafka.pid,watch.pid}

node_dir() {
    printf '%s/node-%s\n' "$DATA_DIR" "$1"
}

prop_get() {  # prop_get FILE KEY -> the first value of KEY in a key=value FILE
    [[ -f "$1" ]] || return 0
    awk -v k="$2" 'index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$1"
}

layout_get() {  # layout_get KEY
    prop_get "$DATA_DIR/layout" "$1"
}

cmdline_has() {  # cmdline_has PID TEXT: the command line of PID contains TEXT
    local cmd
    [[ -r "/proc/$1/cmdline" ]] || return 1
    cmd="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
    [[ "$cmd" == *"$2"* ]]
}

node_port() {  # node_port NODE_DIR -> the PLAINTEXT port of its server.properties
    prop_get "$1/server.properties" advertised.listeners | sed -n 's/.*:\([0-9]*\)$/\1/p'
}

# The pid in NODE_DIR/kafka.pid when that process is a broker started with NODE_DIR's config.
running_pid() {  # running_pid NODE_DIR
    local pidfile="$1/kafka.pid" pid
    [[ -f "$pidfile" ]] || return 0
    pid="$(<"$pidfile")"
    is_uint "${pid:-x}" || return 0
    if cmdline_has "$pid" "$1/server.properties"; then
        printf '%s\n' "$pid"
    fi
}

stop_watcher() {  # stop_watcher NODE_DIR
    local pidfile="$1/watch.pid" pid
    [[ -f "$pidfile" ]] || return 0
    pid="$(<"$pidfile")"
    if is_uint "${pid:-x}" && cmdline_has "$pid" "accesswatch-kafka-watch $1"; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

start_watcher() {  # start_watcher NODE_DIR BROKER_PID
    [[ -n "${KAFKA_WATCH_PID:-}" ]] || return 0
    # shellcheck disable=SC2016
    setsid bash -c '
        w=$1; b=$2; t=$3
        while kill -0 "$w" 2>/dev/null && kill -0 "$b" 2>/dev/null; do sleep 2; done
        kill -0 "$b" 2>/dev/null || exit 0
        kill -TERM "$b" 2>/dev/null
        for ((i = 0; i < t; i++)); do kill -0 "$b" 2>/dev/null || exit 0; sleep 1; done
        kill -KILL "$b" 2>/dev/null' "accesswatch-kafka-watch $1" \
        "$KAFKA_WATCH_PID" "$2" "$STOP_TIMEOUT" </dev/null >/dev/null 2>&1 &
    echo "$!" >"$1/watch.pid"
}

log_tail() {  # log_tail NODE_DIR -> the last lines the node wrote, for error messages
    local f
    for f in "$1/logs/kafka.out" "$1/logs/server.log"; do
        if [[ -s "$f" ]]; then
            echo "--- last lines of $f:" >&2
            tail -n 25 "$f" >&2
        fi
    done
}

write_common_props() {  # write_common_props NODE_DIR NODE_ID PORT CONTROLLER_PORT
    cat <<EOF
# Written by deploy/kafka/apache-kafka.sh; reused as is on every restart of this node.
process.roles=broker,controller
node.id=$2
listeners=PLAINTEXT://127.0.0.1:$3,CONTROLLER://127.0.0.1:$4
advertised.listeners=PLAINTEXT://127.0.0.1:$3
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$1/kraft
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
num.partitions=1
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
# A restarted or killed node is noticed in 6 s instead of 9 s (heartbeats every second).
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
log.retention.hours=168
EOF
}

format_node() {  # format_node NODE_DIR CLUSTER_ID [--standalone]
    local out
    [[ -f "$1/kraft/meta.properties" ]] && return 0
    if ! out="$("$JAVA" "${TOOL_JVM_OPTS[@]}" -cp "$LIB_DIR/*" -Dkafka.logs.dir="$1/logs" \
        -Dlog4j2.configurationFile="$LOG4J_CONFIG" kafka.tools.StorageTool format \
        "${@:3}" -t "$2" -c "$1/server.properties" 2>&1)"; then
        printf '%s\n' "$out" | tail -n 15 >&2
        die "formatting the storage of $1 failed"
    fi
}

cluster_id() {
    local id
    if [[ ! -s "$DATA_DIR/cluster.id" ]]; then
        id="$("$JAVA" "${TOOL_JVM_OPTS[@]}" -cp "$LIB_DIR/*" kafka.tools.StorageTool random-uuid 2>/dev/null |
            tail -n 1)"
        [[ "$id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "kafka.tools.StorageTool random-uuid gave '$id'"
        echo "$id" >"$DATA_DIR/cluster.id"
    fi
    cat "$DATA_DIR/cluster.id"
}

launch_node() {  # launch_node NODE_DIR: start the JVM in the background, write kafka.pid
    local dir="$1" port
    port="$(node_port "$dir")"
    if port_answers "$port"; then
        die "127.0.0.1:$port is already in use by another process (set KAFKA_PORT to a free port)"
    fi
    mkdir -p "$dir/logs"
    stop_watcher "$dir"
    # shellcheck disable=SC2086  # the *_OPTS are lists of flags
    setsid "$JAVA" $HEAP_OPTS $JVM_OPTS -Dkafka.logs.dir="$dir/logs" \
        -Dlog4j2.configurationFile="$LOG4J_CONFIG" -cp "$LIB_DIR/*" \
        kafka.Kafka "$dir/server.properties" </dev/null >"$dir/logs/kafka.out" 2>&1 &
    echo "$!" >"$dir/kafka.pid"
    start_watcher "$dir" "$!"
}

log_size() {  # log_size NODE_DIR
    stat -c %s "$1/logs/server.log" 2>/dev/null || echo 0
}

# wait_ready NODE_DIR LOG_OFFSET DEADLINE: the port answers and the log says the server started.
wait_ready() {
    local dir="$1" offset="$2" deadline="$3" port pid
    port="$(node_port "$dir")"
    pid="$(<"$dir/kafka.pid")"
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log_tail "$dir"
            return 1
        fi
        if port_answers "$port" && [[ -f "$dir/logs/server.log" ]] &&
            grep -qF "$READY_LINE" < <(tail -c +"$((offset + 1))" "$dir/logs/server.log"); then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            log_tail "$dir"
            return 2
        fi
        sleep 0.5
    done
}

# stop_nodes NODE_DIR...: SIGTERM every running node, wait, SIGKILL what is left.
stop_nodes() {
    local dir pid pids=() dirs=() deadline
    for dir in "$@"; do
        pid="$(running_pid "$dir")"
        stop_watcher "$dir"
        if [[ -z "$pid" ]]; then
            rm -f "$dir/kafka.pid"
            continue
        fi
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
        dirs+=("$dir")
    done
    ((${#pids[@]})) || {
        info "no broker of $DATA_DIR is running"
        return 0
    }
    deadline=$((SECONDS + STOP_TIMEOUT))
    local i alive
    while :; do
        alive=0
        for i in "${!pids[@]}"; do
            kill -0 "${pids[$i]}" 2>/dev/null && alive=1
        done
        ((alive)) || break
        if ((SECONDS >= deadline)); then
            for i in "${!pids[@]}"; do
                if kill -0 "${pids[$i]}" 2>/dev/null; then
                    info "node in ${dirs[$i]} ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"
                    kill -KILL "${pids[$i]}" 2>/dev/null || true
                fi
            done
            sleep 1
            break
        fi
        sleep 0.5
    done
    for i in "${!pids[@]}"; do
        rm -f "${dirs[$i]}/kafka.pid"
        info "stopped node $(basename "${dirs[$i]}") (pid ${pids[$i]})"
    done
}

# start_nodes NODE_DIR...: launch the nodes that are not running and wait until all serve.
start_nodes() {
    local dir pid offsets=() launched=() deadline i rc
    for dir in "$@"; do
        pid="$(running_pid "$dir")"
        if [[ -n "$pid" ]]; then
            info "node $(basename "$dir") already running (pid $pid)"
            offsets+=(-1)
            continue
        fi
        offsets+=("$(log_size "$dir")")
        launch_node "$dir"
        launched+=("$dir")
    done
    deadline=$((SECONDS + START_TIMEOUT))
    i=0
    for dir in "$@"; do
        if ((offsets[i] >= 0)); then
            rc=0
            wait_ready "$dir" "${offsets[$i]}" "$deadline" || rc=$?
            if ((rc)); then
                ((${#launched[@]})) && stop_nodes "${launched[@]}" >/dev/null
                if ((rc == 2)); then
                    die "node $(basename "$dir") did not serve clients within ${START_TIMEOUT}s (log above)"
                fi
                die "node $(basename "$dir") exited during start (log above)"
            fi
        fi
        i=$((i + 1))
    done
}

check_layout() {  # check_layout MODE NODES: refuse a data dir set up differently
    local mode nodes
    mode="$(layout_get mode)"
    nodes="$(layout_get nodes)"
    [[ -z "$mode" ]] && return 0
    if [[ "$mode" != "$1" || "$nodes" != "$2" ]]; then
        die "$DATA_DIR holds a $mode setup of $nodes node(s); use the matching command or another KAFKA_DATA_DIR"
    fi
}

check_recorded_port() {  # check_recorded_port NODE_DIR: KAFKA_PORT must agree with the data dir
    local recorded
    recorded="$(node_port "$1")"
    if [[ -n "${KAFKA_PORT:-}" && "$KAFKA_PORT" != "$recorded" ]]; then
        die "$DATA_DIR was set up for port $recorded, not KAFKA_PORT=$KAFKA_PORT; unset KAFKA_PORT or use another KAFKA_DATA_DIR"
    fi
}

ensure_free() {  # ensure_free PORT...: refuse ports that another process already serves
    local p
    for p in "$@"; do
        if port_answers "$p"; then
            die "127.0.0.1:$p is already in use by another process (set KAFKA_PORT to a free port)"
        fi
    done
}

first_free_port_above() {  # first_free_port_above PORT
    local p=$(($1 + 1))
    while ((p <= 65535)) && port_answers "$p"; do
        p=$((p + 1))
    done
    ((p <= 65535)) || die "no free port above $1"
    echo "$p"
}

# ---------------------------------------------------------------------------------------------
# commands

cmd_start() {
    need_java
    cmd_fetch
    check_layout single 1
    local dir port cport id
    dir="$(node_dir 1)"
    if [[ -f "$dir/server.properties" ]]; then
        check_recorded_port "$dir"
    else
        port="${KAFKA_PORT:-19092}"
        check_port KAFKA_PORT "$port"
        cport="${KAFKA_CONTROLLER_PORT:-$(first_free_port_above "$port")}"
        check_port KAFKA_CONTROLLER_PORT "$cport"
        [[ "$cport" != "$port" ]] || die "KAFKA_CONTROLLER_PORT must differ from KAFKA_PORT"
        ensure_free "$port" "$cport"
        mkdir -p "$dir/logs"
        printf 'mode=single\nnodes=1\n' >"$DATA_DIR/layout"
        {
            write_common_props "$dir" 1 "$port" "$cport"
            cat <<EOF
controller.quorum.bootstrap.servers=127.0.0.1:$cport
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
        } >"$dir/server.properties.tmp"
        mv "$dir/server.properties.tmp" "$dir/server.properties"
    fi
    id="$(cluster_id)"
    format_node "$dir" "$id" --standalone
    start_nodes "$dir"
    info "Kafka $KAFKA_VERSION serving on 127.0.0.1:$(node_port "$dir") (pid $(<"$dir/kafka.pid"), data $dir)"
}

cmd_cluster_start() {
    local n="${1:-3}"
    # shellcheck disable=SC2015  # die when either test fails
    is_uint "$n" && ((n >= 3 && n <= 9)) || die "cluster-start N: N='$n' must be 3-9 nodes"
    need_java
    cmd_fetch
    check_layout cluster "$n"
    local base="${KAFKA_PORT:-19092}" i dir voters="" id dirs=() misr=2
    check_port KAFKA_PORT "$base"
    if [[ -f "$(node_dir 1)/server.properties" ]]; then
        check_recorded_port "$(node_dir 1)"
    else
        check_port KAFKA_PORT "$((base + 2 * n - 1))"
        for ((i = 0; i < 2 * n; i++)); do
            ensure_free "$((base + i))"
        done
        for ((i = 1; i <= n; i++)); do
            voters+="${voters:+,}$i@127.0.0.1:$((base + n + i - 1))"
        done
        mkdir -p "$DATA_DIR"
        printf 'mode=cluster\nnodes=%s\n' "$n" >"$DATA_DIR/layout"
        for ((i = 1; i <= n; i++)); do
            dir="$(node_dir "$i")"
            mkdir -p "$dir/logs"
            {
                write_common_props "$dir" "$i" "$((base + i - 1))" "$((base + n + i - 1))"
                cat <<EOF
controller.quorum.voters=$voters
default.replication.factor=3
min.insync.replicas=$misr
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=$misr
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=$misr
EOF
            } >"$dir/server.properties.tmp"
            mv "$dir/server.properties.tmp" "$dir/server.properties"
        done
    fi
    id="$(cluster_id)"
    local fpids=() fpid
    for ((i = 1; i <= n; i++)); do  # one JVM per node: format them side by side
        dir="$(node_dir "$i")"
        format_node "$dir" "$id" &
        fpids+=("$!")
        dirs+=("$dir")
    done
    for fpid in "${fpids[@]}"; do
        wait "$fpid" || exit 1  # format_node said why
    done
    start_nodes "${dirs[@]}"
    info "Kafka $KAFKA_VERSION cluster of $n nodes serving on $(bootstrap_of "${dirs[@]}") (data $DATA_DIR)"
}

bootstrap_of() {  # bootstrap_of NODE_DIR... -> host:port,host:port
    local dir out=""
    for dir in "$@"; do
        out+="${out:+,}127.0.0.1:$(node_port "$dir")"
    done
    echo "$out"
}

all_node_dirs() {
    local n i
    n="$(layout_get nodes)"
    is_uint "${n:-x}" || return 0
    for ((i = 1; i <= n; i++)); do
        node_dir "$i"
    done
}

cmd_stop() {  # cmd_stop MODE
    local mode dirs=()
    mode="$(layout_get mode)"
    if [[ -z "$mode" ]]; then
        info "nothing set up in $DATA_DIR: no broker to stop"
        return 0
    fi
    if [[ "$mode" != "$1" ]]; then
        local cmd="stop"
        [[ "$mode" == cluster ]] && cmd="cluster-stop"
        die "$DATA_DIR holds a $mode setup: use '$cmd'"
    fi
    mapfile -t dirs < <(all_node_dirs)
    stop_nodes "${dirs[@]}"
}

cmd_status() {
    local mode dirs=() dir pid up=0
    mode="$(layout_get mode)"
    if [[ -z "$mode" ]]; then
        info "nothing set up in $DATA_DIR"
        return 3
    fi
    mapfile -t dirs < <(all_node_dirs)
    for dir in "${dirs[@]}"; do
        pid="$(running_pid "$dir")"
        if [[ -n "$pid" ]] && port_answers "$(node_port "$dir")"; then
            echo "$(basename "$dir"): running, pid $pid, bootstrap 127.0.0.1:$(node_port "$dir")"
            up=$((up + 1))
        elif [[ -n "$pid" ]]; then
            echo "$(basename "$dir"): starting or stopping, pid $pid, port $(node_port "$dir") not answering"
        else
            echo "$(basename "$dir"): stopped (port $(node_port "$dir"))"
        fi
    done
    echo "$mode of ${#dirs[@]} node(s) in $DATA_DIR: $up running; bootstrap $(bootstrap_of "${dirs[@]}")"
    ((up == ${#dirs[@]})) && return 0
    ((up == 0)) && return 3
    return 1
}

usage() {
    sed -n '3,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
    local cmd="${1:-}"
    [[ $# -gt 0 ]] && shift
    check_settings
    case "$cmd" in
        fetch) cmd_fetch ;;
        start) cmd_start ;;
        stop) cmd_stop single ;;
        status) cmd_status ;;
        cluster-start) cmd_cluster_start "$@" ;;
        cluster-stop) cmd_stop cluster ;;
        -h | --help | help) usage ;;
        "") usage >&2; exit 2 ;;
        *) die "unknown command '$cmd' (fetch, start, stop, status, cluster-start N, cluster-stop)" ;;
    esac
}

main "$@"
