# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/lib/common.sh - shared helpers for the strata benchmark harness:
# logging, dependency install, free ports, CPU pinning, process lifecycle.
# Sourced by bench/run.sh; expects `set -euo pipefail` from the caller.

log()  { printf '[bench] %s\n' "$*" >&2; }
warn() { printf '[bench] WARNING: %s\n' "$*" >&2; }
die()  { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
# have_tool NAME: like `command -v`, but also looks in the sbin dirs that a
# non-root PATH may lack (nginx lives in /usr/sbin).
have_tool() {
    command -v "$1" >/dev/null 2>&1 && return 0
    local d
    for d in /usr/sbin /sbin /usr/local/sbin; do
        [[ -x "$d/$1" ]] && return 0
    done
    return 1
}

tool_path() {
    command -v "$1" 2>/dev/null && return 0
    local d
    for d in /usr/sbin /sbin /usr/local/sbin; do
        [[ -x "$d/$1" ]] && { printf '%s\n' "$d/$1"; return 0; }
    done
    return 1
}

# ensure_tools TOOL:PACKAGE ... - apt-get install the packages whose tool is
# missing; nothing touches apt when everything is already there.
ensure_tools() {
    local spec tool pkg missing=()
    for spec in "$@"; do
        tool=${spec%%:*} pkg=${spec#*:}
        have_tool "$tool" || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing missing packages: ${missing[*]}"
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        have_tool sudo || die "need root or sudo to apt-get install ${missing[*]}"
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    for spec in "$@"; do
        have_tool "${spec%%:*}" || die "${spec%%:*} still missing after installing ${spec#*:}"
    done
}

# ---------------------------------------------------------------- numbers
# median V... - prints the median (mean of the middle two for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) { print "nan"; exit }
              if (NR % 2) print v[(NR + 1) / 2]
              else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio A B [FMT] - A/B, or "n/a" when B is zero or not a number.
ratio() {
    awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN {
        if (b + 0 == 0 || a == "nan" || b == "nan") print "n/a"; else printf f "\n", a / b }'
}

# ---------------------------------------------------------------- ports
# free_port - a TCP port on 127.0.0.1 that no socket uses right now. Picked
# outside the kernel's ephemeral range, so the thousands of client-side
# sockets a load run leaves behind (TIME_WAIT, pooled upstream connections)
# cannot collide with a listener the next run wants to bind.
free_port() {
    local lo=32768 hi=60999 port i
    if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
        read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
    fi
    ((hi - lo > 40000)) && lo=1 hi=0   # range too wide to avoid: take any unused port
    for ((i = 0; i < 500; i++)); do
        port=$((10000 + RANDOM % 55000))
        ((port >= lo && port <= hi)) && continue
        port_in_use "$port" || { printf '%s\n' "$port"; return 0; }
    done
    die "no free port found outside the ephemeral range $lo-$hi"
}

port_in_use() {
    if have_tool ss; then
        ss -Htan "sport = :$1" 2>/dev/null | grep -q . && return 0
        return 1
    fi
    # Fallback: something accepts a connection there.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------- pinning
# PIN_SERVER / PIN_CLIENT are command prefixes (arrays); empty when pinning
# is off. Servers share CPU 0, the load generator gets CPU 1.
PIN_SERVER=()
PIN_CLIENT=()
PINNING="off"

setup_pinning() {
    local ncpu
    ncpu=$(nproc 2>/dev/null || echo 1)
    if [[ "${BENCH_NO_PIN:-0}" == 1 ]]; then
        PINNING="off (BENCH_NO_PIN=1)"
    elif ! have_tool taskset; then
        PINNING="off (no taskset)"
    elif ((ncpu < 2)); then
        PINNING="off (nproc=$ncpu)"
    else
        PIN_SERVER=(taskset -c 0)
        PIN_CLIENT=(taskset -c 1)
        PINNING="servers on CPU 0, wrk on CPU 1"
    fi
    log "pinning: $PINNING"
}

# ---------------------------------------------------------------- processes
# Every process the harness starts is recorded here and stopped by PID.
BENCH_PIDS=()
BENCH_PID_NAMES=()
BENCH_PID_LOGS=()
SPAWNED_PID=""

BENCH_PID_OKRC=()
# spawn NAME LOGFILE CMD... - start CMD in the background on the server CPU,
# stdout+stderr to LOGFILE; sets SPAWNED_PID (no subshell, so it stays our
# child and `wait` can reap it). SPAWN_OK_RC (default 0) is the exit status
# that counts as a clean stop after SIGTERM (varnishd's manager exits 64).
# SPAWN_PIN=client starts it on the client CPU instead.
SPAWN_OK_RC=0
SPAWN_PIN=server
spawn() {
    local name=$1 logf=$2 pin=("${PIN_SERVER[@]}")
    shift 2
    [[ "$SPAWN_PIN" == client ]] && pin=("${PIN_CLIENT[@]}")
    "${pin[@]}" "$@" >"$logf" 2>&1 &
    SPAWNED_PID=$!
    BENCH_PIDS+=("$SPAWNED_PID")
    BENCH_PID_NAMES+=("$name")
    BENCH_PID_LOGS+=("$logf")
    BENCH_PID_OKRC+=("$SPAWN_OK_RC")
    SPAWN_OK_RC=0 SPAWN_PIN=server
    log "started $name (pid $SPAWNED_PID)"
}

# tree_ticks PID... - utime+stime (clock ticks, all threads) of each PID and
# all its descendants (nginx master + worker, varnishd manager + child).
# Processes that already exited are not counted.
tree_ticks() {
    local total=0 pid t kids=()
    for pid in "$@"; do
        [[ -n "$pid" ]] || continue
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + ${t:-0}))
        mapfile -t kids < <(pgrep -P "$pid" 2>/dev/null || true)
        if ((${#kids[@]} > 0)); then
            t=$(tree_ticks "${kids[@]}")
            total=$((total + t))
        fi
    done
    echo "$total"
}

# check_alive - die (with the log tail) if a spawned process has exited.
check_alive() {
    local i pid rc
    for i in "${!BENCH_PIDS[@]}"; do
        pid=${BENCH_PIDS[$i]}
        [[ -z "$pid" ]] && continue
        if ! kill -0 "$pid" 2>/dev/null; then
            rc=0
            wait "$pid" 2>/dev/null || rc=$?
            BENCH_PIDS[i]=""
            warn "${BENCH_PID_NAMES[$i]} (pid $pid) exited unexpectedly, status $rc$(describe_status "$rc")"
            warn "last lines of ${BENCH_PID_LOGS[$i]}:"
            tail -n 30 "${BENCH_PID_LOGS[$i]}" >&2 || true
            die "${BENCH_PID_NAMES[$i]} died during the benchmark"
        fi
    done
}

describe_status() {
    local rc=$1
    if ((rc > 128)); then
        printf ' (signal %s)' "$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    fi
}

# stop_all - SIGTERM every live spawned process (reverse start order), give
# it a few seconds, then SIGKILL. Reports a non-zero exit status.
stop_all() {
    local i pid rc t
    for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${BENCH_PIDS[$i]}
        [[ -z "$pid" ]] && continue
        BENCH_PIDS[i]=""
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for ((t = 0; t < 50; t++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                warn "${BENCH_PID_NAMES[$i]} (pid $pid) ignored SIGTERM for 5s; SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        rc=0
        wait "$pid" 2>/dev/null || rc=$?
        if ((rc != 0 && rc != ${BENCH_PID_OKRC[$i]:-0})); then
            warn "${BENCH_PID_NAMES[$i]} (pid $pid) exit status $rc$(describe_status "$rc")"
        fi
    done
}

# ---------------------------------------------------------------- foreign load
# The machine may be shared: "other CPU" is the CPU time spent during a
# measurement by anything that is not ours (our servers and their children,
# plus wrk and curl, reaped by this shell), in percent of one CPU.
# cpu_mark before, then `cpu_other_pct >FILE` after (a redirect, not $(...),
# so that `times` sees this shell's reaped children).
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
_CPU_MARK_BUSY=0
_CPU_MARK_OWN=0
_CPU_MARK_NS=0

# user + nice + system + steal. Interrupt time is left out: loopback traffic
# is processed in softirq context and not charged to our processes, so
# counting it would show the proxy's own network work as "other".
_busy_ticks() {
    awk '/^cpu / { print $2 + $3 + $4 + $9; exit }' /proc/stat 2>/dev/null || echo 0
}

_own_ticks() {
    local total=0 pid p t
    for pid in "${BENCH_PIDS[@]}"; do
        [[ -n "$pid" ]] || continue
        for p in "$pid" $(pgrep -P "$pid" 2>/dev/null || true); do
            t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
            total=$((total + ${t:-0}))
        done
    done
    # Reaped children of this shell (wrk through timeout, curl): `times` must
    # run in this shell, not in a command substitution.
    times >"$BENCH_TMP/times"
    t=$(awk -v hz="$CLK_TCK" 'NR == 2 { s = 0
            for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] }
            printf "%d\n", s * hz }' "$BENCH_TMP/times")
    echo $((total + ${t:-0}))
}

cpu_mark() {
    _CPU_MARK_NS=$(date +%s%N)
    _CPU_MARK_BUSY=$(_busy_ticks)
    _own_ticks >"$BENCH_TMP/own"
    _CPU_MARK_OWN=$(<"$BENCH_TMP/own")
}

cpu_other_pct() {
    local busy own ns
    busy=$(_busy_ticks)
    _own_ticks >"$BENCH_TMP/own"
    own=$(<"$BENCH_TMP/own")
    ns=$(date +%s%N)
    awk -v b=$((busy - _CPU_MARK_BUSY)) -v o=$((own - _CPU_MARK_OWN)) -v hz="$CLK_TCK" \
        -v ns=$((ns - _CPU_MARK_NS)) \
        'BEGIN { v = (ns > 0) ? (b - o) * 100 / (hz * ns / 1e9) : 0; printf "%d\n", (v < 0) ? 0 : v + 0.5 }'
}

# cpu_busy_pct - percent of all CPUs busy over a 1 s sample (0 if unknown).
cpu_busy_pct() {
    [[ -r /proc/stat ]] || { echo 0; return 0; }
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
        busy = y[1] - x[1]; all = busy + y[2] - x[2]
        printf "%d\n", (all > 0) ? 100 * busy / all + 0.5 : 0 }'
}
# wait_quiet MAX_SECONDS - wait (bounded) until the machine is at most
# QUIET_BUSY_PCT busy, so that a benchmark does not start on top of a
# compile or a test suite. Sets LAST_BUSY_PCT.
QUIET_BUSY_PCT=15
LAST_BUSY_PCT=0
wait_quiet() {
    local max=${1:-0} start=$SECONDS
    LAST_BUSY_PCT=$(cpu_busy_pct)
    while ((LAST_BUSY_PCT > QUIET_BUSY_PCT)); do
        if ((SECONDS - start >= max)); then
            ((max == 0)) || warn "machine still ${LAST_BUSY_PCT}% busy after waiting ${max}s; measuring anyway"
            return 0
        fi
        log "machine ${LAST_BUSY_PCT}% busy (other processes), waiting for it to settle"
        sleep 2
        LAST_BUSY_PCT=$(cpu_busy_pct)
    done
}

# wait_tcp HOST:PORT PID [TRIES] - wait until something accepts a TCP
# connection there (10 tries a second), without sending a request (that
# would fill a cache); fail early if PID exits.
wait_tcp() {
    local addr=$1 pid=$2 tries=${3:-100} i
    for ((i = 0; i < tries; i++)); do
        kill -0 "$pid" 2>/dev/null || { check_alive; die "pid $pid gone"; }
        (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing accepted connections on $addr within $((tries / 10))s"
}

# stop_pid PID - stop one spawned process now (SIGTERM, SIGKILL after 5 s),
# reap it and drop it from the list (e.g. a peer that failed to start).
stop_pid() {
    local pid=$1 i t
    for i in "${!BENCH_PIDS[@]}"; do
        [[ "${BENCH_PIDS[$i]}" == "$pid" ]] || continue
        BENCH_PIDS[i]=""
        kill -TERM "$pid" 2>/dev/null || true
        for ((t = 0; t < 50; t++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# wait_http URL PID [TRIES] - wait until URL answers 200 (10 tries a second);
# fail early if PID exits.
wait_http() {
    local url=$1 pid=$2 tries=${3:-100} code i
    for ((i = 0; i < tries; i++)); do
        kill -0 "$pid" 2>/dev/null || { check_alive; die "pid $pid gone"; }
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null || true)
        [[ "$code" == 200 ]] && return 0
        sleep 0.1
    done
    die "$url did not answer 200 within $((tries / 10))s (last status: ${code:-none})"
}

# redis_wait PORT - wait (5 s at most) until the redis-server on PORT answers PING.
redis_wait() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]] && return 0
        sleep 0.05
    done
    die "redis-server on port $1 did not answer PING"
}
