#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# bench/run.sh - strata benchmark harness, one command:
#
#   bench/run.sh [SCENARIO]        (default: proxy; see bench/scenarios/)
#   bench/run.sh all               every scenario, one after the other
#   bench/run.sh perf              every peer, scenarios cache-hit, cache-hot,
#                                  cache-big, cache-conn, stampede; summary
#                                  table + bench/perf.png (see bench/README.md)
#   bench/run.sh instr             instructions per cached hit (callgrind),
#                                  strata vs nginx proxy_cache
#   bench/run.sh memory            RSS per cached 1 KiB object, 1,000,000
#                                  objects (BENCH_MEMORY_OBJECTS)
#   bench/run.sh scale             memory tier hit path, 1 to nproc threads
#
# Installs wrk/nginx-light if missing, builds strata in release mode, starts
# the scenario's peers on 127.0.0.1, runs wrk against every target in
# alternation for ROUNDS rounds and reports median req/s and p99 per target,
# relative to the scenario's baseline. Output: a markdown table on stdout,
# also appended to bench/results/<scenario>-<date>.md.
#
# Environment:
#   BENCH_DURATION  seconds per wrk run (10)     BENCH_CONNS    connections (64)
#   BENCH_THREADS   wrk threads (1)              ROUNDS         rounds (3)
#   BENCH_WARMUP    warm-up seconds per target before round 1 (2; 0 = none)
#   BENCH_NO_PIN=1  do not pin with taskset      STRATA_BIN     prebuilt binary (skip build)
#   BENCH_BUILD_DIR build dir (<repo>/build-bench)
#   BENCH_RESULTS_DIR  where results go (bench/results)
#   BENCH_WAIT_QUIET   before each wrk run, wait up to this many seconds for
#                      other processes to leave the CPUs alone (60; 0 = don't)
#
# Exit status: 0 ok; 1 setup failure or a server died; 3 the run finished
# but wrk saw non-2xx responses or socket errors (the table says where).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)

# shellcheck source=lib/common.sh
. "$BENCH_DIR/lib/common.sh"
# shellcheck source=lib/wrk.sh
. "$BENCH_DIR/lib/wrk.sh"
# shellcheck source=peers/nginx-origin.sh
. "$BENCH_DIR/peers/nginx-origin.sh"
# shellcheck source=peers/strata.sh
. "$BENCH_DIR/peers/strata.sh"
# shellcheck source=peers/nginx-cache.sh
. "$BENCH_DIR/peers/nginx-cache.sh"
# shellcheck source=peers/varnish.sh
. "$BENCH_DIR/peers/varnish.sh"
# shellcheck source=peers/slow-origin.sh
. "$BENCH_DIR/peers/slow-origin.sh"
# shellcheck source=peers/haproxy.sh
. "$BENCH_DIR/peers/haproxy.sh"
# shellcheck source=peers/ats.sh
. "$BENCH_DIR/peers/ats.sh"
# shellcheck source=lib/perf.sh
. "$BENCH_DIR/lib/perf.sh"
# shellcheck source=lib/memory.sh
. "$BENCH_DIR/lib/memory.sh"
# shellcheck source=lib/scale.sh
. "$BENCH_DIR/lib/scale.sh"

ROUNDS=${ROUNDS:-3}
OTHER_CPU_WARN=10   # percent of one CPU used by foreign processes during a run
WAIT_QUIET=${BENCH_WAIT_QUIET:-60}
RESULTS_DIR=${BENCH_RESULTS_DIR:-$BENCH_DIR/results}

# ---------------------------------------------------------------- targets
TARGET_NAMES=()
declare -A TARGET_URL=() TARGET_DESC=() TARGET_PIDS=() RES_RPS=() RES_P99=() RES_NON2XX=() RES_SOCKERR=() \
    RES_REQS=() RES_OTHER=() RES_CPU=() RES_RPC=() RES_MBS=()
BASELINE=""
REPORT_NOTES="" # markdown lines a scenario adds under its table
REPORT_EXTRA="" # a markdown block a scenario adds after the per-round lines
REPORT_MBS=0    # 1 = the table also gives wrk's Transfer/sec in MB/s
declare -A TARGET_INVALID=() # target -> why its figures are invalid (set by the fill check)
LIMIT=""        # optional second reference (e.g. the origin itself: the limit)
CPU_PIDS_SET=0  # 1 once a target names its server PIDs: report CPU columns

# add_target NAME URL DESCRIPTION [PID...] - called by scenario setup
# functions. The PIDs (and their descendants) are the target's server
# processes: their CPU time during each run gives requests per CPU-second.
add_target() {
    local name=$1 url=$2 desc=$3
    shift 3
    TARGET_NAMES+=("$name")
    TARGET_URL[$name]=$url
    TARGET_DESC[$name]=$desc
    TARGET_PIDS[$name]="$*"
    (($# == 0)) || CPU_PIDS_SET=1
    RES_RPS[$name]="" RES_P99[$name]="" RES_NON2XX[$name]=0 RES_SOCKERR[$name]=0 RES_REQS[$name]=0
    RES_OTHER[$name]="" RES_CPU[$name]="" RES_RPC[$name]="" RES_MBS[$name]=""
}

# verify_targets - every target answers 200 with the same body as the
# baseline before anything is measured.
verify_targets() {
    local name code ref="$BENCH_TMP/verify-$BASELINE.body"
    for name in "${TARGET_NAMES[@]}"; do
        code=$(curl -s --max-time 5 -D "$BENCH_TMP/verify-$name.headers" \
            -o "$BENCH_TMP/verify-$name.body" -w '%{http_code}' "${TARGET_URL[$name]}" || true)
        [[ "$code" == 200 ]] || die "$name: ${TARGET_URL[$name]} answered ${code:-nothing}, not 200"
    done
    for name in "${TARGET_NAMES[@]}"; do
        cmp -s "$ref" "$BENCH_TMP/verify-$name.body" \
            || die "$name: body differs from $BASELINE's ($(wc -c <"$BENCH_TMP/verify-$name.body") B vs $(wc -c <"$ref") B)"
    done
    log "all targets answer 200 with the same $(wc -c <"$ref") B body"
}

measure_round() {
    local round=$1 name out other t0 t1 cpu rpc cpu_note
    for name in "${TARGET_NAMES[@]}"; do
        out="$BENCH_TMP/wrk-$name-r$round.txt"
        wait_quiet "$WAIT_QUIET"
        cpu_mark
        # shellcheck disable=SC2086  # a list of PIDs
        t0=$(tree_ticks ${TARGET_PIDS[$name]})
        run_wrk "${TARGET_URL[$name]}" "$out"
        # shellcheck disable=SC2086
        t1=$(tree_ticks ${TARGET_PIDS[$name]})
        cpu_other_pct >"$BENCH_TMP/other"
        other=$(<"$BENCH_TMP/other")
        check_alive
        parse_wrk "$out"
        cpu=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
        rpc=$(awk -v r="$WRK_REQUESTS" -v c="$cpu" 'BEGIN { if (c > 0) printf "%.0f", r / c; else print "nan" }')
        RES_OTHER[$name]+="$other "
        RES_RPS[$name]+="$WRK_RPS "
        RES_P99[$name]+="$WRK_P99_MS "
        RES_MBS[$name]+="$WRK_MBS "
        cpu_note=""
        if [[ -n "${TARGET_PIDS[$name]}" ]]; then
            cpu_note=", server CPU ${cpu}s = $rpc req/CPU-s"
            RES_CPU[$name]+="$cpu "
            RES_RPC[$name]+="$rpc "
        fi
        RES_NON2XX[$name]=$((RES_NON2XX[$name] + WRK_NON2XX))
        RES_SOCKERR[$name]=$((RES_SOCKERR[$name] + WRK_SOCKERR))
        RES_REQS[$name]=$((RES_REQS[$name] + WRK_REQUESTS))
        log "round $round/$ROUNDS $name: $WRK_RPS req/s$( ((REPORT_MBS == 0)) || echo ", $WRK_MBS MB/s"), p50 ${WRK_P50_MS} ms, p99 ${WRK_P99_MS} ms," \
            "non-2xx $WRK_NON2XX, socket errors $WRK_SOCKERR, other CPU ${other}%$cpu_note"
        if ((other > OTHER_CPU_WARN)); then
            warn "$name round $round: other processes used ${other}% of a CPU during the run: this round is noisy"
        fi
        if ((WRK_NON2XX + WRK_SOCKERR > 0)); then
            warn "$name round $round: $WRK_NON2XX non-2xx/3xx responses, $WRK_SOCKERR socket errors"
            grep -E 'Socket errors|Non-2xx' "$out" >&2 || true
        fi
    done
}

# ---------------------------------------------------------------- report
LOAD_START="?"
BUSY_START="?"
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'; }

fmt_rps() { awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
fmt_ms()  { awk -v v="$1" 'BEGIN { printf "%.2f", v }'; }

# range V... - "min–max" of the values.
range() {
    printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
        END { if (NR == 0) print "-"; else printf "%s–%s\n", lo, hi }'
}
fmt_range_rps() { local r; r=$(range "$@"); awk -v r="$r" 'BEGIN { split(r, a, "–"); printf "%.0f–%.0f", a[1], a[2] }'; }
fmt_range_ms()  { local r; r=$(range "$@"); awk -v r="$r" 'BEGIN { split(r, a, "–"); printf "%.2f–%.2f", a[1], a[2] }'; }

# report_header - the lines that say where and how a run was made.
report_header() {
    local cpu_model
    cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
    printf '## %s - %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$SCENARIO_TITLE"
    printf -- '- machine: %s, %s CPUs, %s; CPUs %s%% busy just before round 1; load average at start %s, at end %s\n' \
        "$(uname -m)" "$(nproc)" "${cpu_model:-unknown CPU}" "$BUSY_START" "$LOAD_START" "$(loadavg)"
    printf -- '- strata: %s (%s), commit %s\n' "$("$STRATA_BIN" --version 2>/dev/null || echo '?')" \
        "$STRATA_BIN" "$(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
}

# report - markdown section on stdout; returns 3 when errors were seen.
report() {
    local name rps p99 other base_rps base_p99 base_rpc lim_rps errors=0 cpu rpc best="" best_rps=0 label mbs
    # shellcheck disable=SC2086  # word-splitting the per-round lists is intended
    base_rps=$(median ${RES_RPS[$BASELINE]})
    # shellcheck disable=SC2086
    base_p99=$(median ${RES_P99[$BASELINE]})
    # shellcheck disable=SC2086
    base_rpc=$(median ${RES_RPC[$BASELINE]})
    # shellcheck disable=SC2086
    [[ -z "$LIMIT" ]] || lim_rps=$(median ${RES_RPS[$LIMIT]})
    # The best peer: the fastest valid target that is neither strata nor the limit.
    for name in "${TARGET_NAMES[@]}"; do
        [[ "$name" != strata && "$name" != "$LIMIT" && -z "${TARGET_INVALID[$name]:-}" ]] || continue
        # shellcheck disable=SC2086
        rps=$(median ${RES_RPS[$name]})
        if awk -v a="$rps" -v b="$best_rps" 'BEGIN { exit !(a > b) }'; then best=$name best_rps=$rps; fi
    done
    report_header
    printf -- '- load: %s, %s rounds alternating %s, warm-up %ss per target; pinning: %s\n' \
        "\`$(wrk_settings)\`" "$ROUNDS" "$(IFS=/; echo "${TARGET_NAMES[*]}")" "$WRK_WARMUP" "$PINNING"
    printf '\n| target | req/s (median) | req/s range | p99 ms (median) | p99 range | req/s vs %s |' "$BASELINE"
    [[ -z "$LIMIT" ]] || printf ' req/s vs %s |' "$LIMIT"
    [[ -z "$best" ]] || printf ' req/s vs best peer (%s) |' "$best"
    ((REPORT_MBS == 0)) || printf ' MB/s (median) | MB/s range |'
    printf ' p99 vs %s |' "$BASELINE"
    ((CPU_PIDS_SET == 0)) || printf ' server CPU s (median) | req per CPU-s (median) | req/CPU-s range | req/CPU-s vs %s |' "$BASELINE"
    printf ' non-2xx | socket errors | other CPU %% (max) |\n|---|---:|---:|---:|---:|---:|'
    [[ -z "$LIMIT" ]] || printf -- '---:|'
    [[ -z "$best" ]] || printf -- '---:|'
    ((REPORT_MBS == 0)) || printf -- '---:|---:|'
    printf -- '---:|'
    ((CPU_PIDS_SET == 0)) || printf -- '---:|---:|---:|---:|'
    printf -- '---:|---:|---:|\n'
    for name in "${TARGET_NAMES[@]}"; do
        # shellcheck disable=SC2086
        rps=$(median ${RES_RPS[$name]})
        # shellcheck disable=SC2086
        p99=$(median ${RES_P99[$name]})
        # shellcheck disable=SC2086
        other=$(printf '%s\n' ${RES_OTHER[$name]} | sort -n | tail -n 1)
        label=$name
        [[ -z "${TARGET_INVALID[$name]:-}" ]] || label="$name (**INVALID**: ${TARGET_INVALID[$name]})"
        # shellcheck disable=SC2086
        printf '| %s | %s | %s | %s | %s | %s |' "$label" "$(fmt_rps "$rps")" "$(fmt_range_rps ${RES_RPS[$name]})" \
            "$(fmt_ms "$p99")" "$(fmt_range_ms ${RES_P99[$name]})" "$(ratio "$rps" "$base_rps")"
        [[ -z "$LIMIT" ]] || printf ' %s |' "$(ratio "$rps" "$lim_rps")"
        [[ -z "$best" ]] || printf ' %s |' "$(ratio "$rps" "$best_rps")"
        # shellcheck disable=SC2086
        mbs=$(median ${RES_MBS[$name]})
        # shellcheck disable=SC2086
        ((REPORT_MBS == 0)) || printf ' %s | %s |' "$(awk -v v="$mbs" 'BEGIN { printf "%.1f", v }')" \
            "$(range ${RES_MBS[$name]} | awk -F'–' '{ printf "%.1f–%.1f", $1, $2 }')"
        printf ' %s |' "$(ratio "$p99" "$base_p99")"
        if ((CPU_PIDS_SET)); then
            if [[ -n "${RES_CPU[$name]}" ]]; then
                # shellcheck disable=SC2086
                cpu=$(median ${RES_CPU[$name]})
                # shellcheck disable=SC2086
                rpc=$(median ${RES_RPC[$name]})
                # shellcheck disable=SC2086
                printf ' %s | %s | %s | %s |' "$(fmt_ms "$cpu")" "$(fmt_rps "$rpc")" \
                    "$(fmt_range_rps ${RES_RPC[$name]})" "$(ratio "$rpc" "$base_rpc")"
            else
                printf ' - | - | - | - |'
            fi
        fi
        printf ' %s | %s | %s |\n' "${RES_NON2XX[$name]}" "${RES_SOCKERR[$name]}" "$other"
        if [[ -n "${BENCH_TSV:-}" ]]; then
            # shellcheck disable=SC2086
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$SCENARIO" "$name" "$rps" \
                "$(range ${RES_RPS[$name]})" "$p99" "$(range ${RES_P99[$name]})" "$(median ${RES_RPC[$name]})" \
                "$mbs" "$(range ${RES_MBS[$name]})" "${TARGET_INVALID[$name]:-}" \
                $((RES_NON2XX[$name] + RES_SOCKERR[$name])) "$(median ${RES_CPU[$name]})" >>"$BENCH_TSV"
        fi
        errors=$((errors + RES_NON2XX[$name] + RES_SOCKERR[$name]))
    done
    printf '\nPer round (req/s | p99 ms | other CPU %%%s):\n\n' "$( ((CPU_PIDS_SET == 0)) || echo ' | server CPU s')"
    for name in "${TARGET_NAMES[@]}"; do
        printf -- '- %s: %s| %s| %s%s(%s requests in all) - %s\n' "$name" "${RES_RPS[$name]}" "${RES_P99[$name]}" \
            "${RES_OTHER[$name]}" "${RES_CPU[$name]:+| ${RES_CPU[$name]}}" "${RES_REQS[$name]}" "${TARGET_DESC[$name]}"
    done
    [[ -z "${REPORT_NOTES:-}" ]] || printf '\n%s\n' "$REPORT_NOTES"
    [[ -z "${REPORT_EXTRA:-}" ]] || printf '%s\n' "$REPORT_EXTRA"
    if ((errors > 0)); then
        printf '\n**Errors:** wrk counted non-2xx/3xx responses or socket errors (columns above).\n'
    fi
    printf '\n'
    ((errors == 0)) || return 3
}

# ---------------------------------------------------------------- main
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_wrk
    stop_all
    if [[ -n "${BENCH_TMP:-}" && -d "$BENCH_TMP" ]]; then
        if [[ "${BENCH_KEEP_TMP:-0}" == 1 || $rc -ne 0 ]]; then
            log "logs and raw wrk output kept in $BENCH_TMP"
        else
            rm -rf "$BENCH_TMP"
        fi
    fi
    exit "$rc"
}

usage() {
    sed -n '3,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    printf 'scenarios:'
    local f
    for f in "$BENCH_DIR"/scenarios/*.sh; do printf ' %s' "$(basename "$f" .sh)"; done
    printf '\n'
}

main() {
    case "${1:-}" in
        -h | --help) usage; return 0 ;;
        all) run_all; return ;;
        perf) run_perf; return ;;
        instr) run_instr; return ;;
        memory) run_memory; return ;;
        scale) run_scale; return ;;
    esac
    local scenario=${1:-proxy}
    SCENARIO=$scenario
    local sfile="$BENCH_DIR/scenarios/$scenario.sh"
    [[ -f "$sfile" ]] || { usage >&2; die "unknown scenario: $scenario"; }
    [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
    [[ "$WRK_DURATION" =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION must be whole seconds"
    [[ "$WRK_CONNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONNS must be a positive integer"
    [[ "$WRK_THREADS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_THREADS must be a positive integer"
    [[ "$WRK_WARMUP" =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be whole seconds"
    [[ "$WAIT_QUIET" =~ ^[0-9]+$ ]] || die "BENCH_WAIT_QUIET must be whole seconds"
    # shellcheck source=scenarios/proxy.sh
    . "$sfile"

    ensure_tools wrk:wrk nginx:nginx-light curl:curl meson:meson ninja:ninja-build
    setup_pinning
    LOAD_START=$(loadavg)

    BENCH_TMP=$(mktemp -d /tmp/strata-bench.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    "scenario_${scenario}_setup"
    local results section="$BENCH_TMP/report.md" rc=0
    mkdir -p "$RESULTS_DIR"
    results="$RESULTS_DIR/$scenario-$(date -u +%Y-%m-%d).md"
    if declare -F "scenario_${scenario}_run" >/dev/null; then
        # The scenario measures by itself (not wrk) and prints its section.
        "scenario_${scenario}_run" >"$section" || rc=$?
        cat "$section"
        cat "$section" >>"$results"
        log "appended to $results"
        return "$rc"
    fi
    [[ -n "$BASELINE" && -n "${TARGET_URL[$BASELINE]:-}" ]] || die "scenario $scenario set no BASELINE target"
    verify_targets
    if declare -F "scenario_${scenario}_prepare" >/dev/null; then
        "scenario_${scenario}_prepare"   # e.g. fill the caches and check hits
    fi

    local name round
    wait_quiet "$WAIT_QUIET"
    BUSY_START=$LAST_BUSY_PCT
    if ((WRK_WARMUP > 0)); then
        for name in "${TARGET_NAMES[@]}"; do
            log "warm-up $name (${WRK_WARMUP}s)"
            run_wrk "${TARGET_URL[$name]}" "$BENCH_TMP/wrk-$name-warmup.txt" "$WRK_WARMUP"
            check_alive
        done
    fi
    for ((round = 1; round <= ROUNDS; round++)); do
        measure_round "$round"
    done
    if declare -F "scenario_${scenario}_after" >/dev/null; then
        "scenario_${scenario}_after"   # e.g. a second, non-wrk load
    fi

    report >"$section" || rc=$?
    cat "$section"
    cat "$section" >>"$results"
    log "appended to $results"
    return "$rc"
}

# run_all - every scenario, each in its own harness process (own temp dir,
# own peers, own cleanup). Exit status: the worst one seen.
run_all() {
    local f s rc worst=0
    for f in "$BENCH_DIR"/scenarios/*.sh; do
        s=$(basename "$f" .sh)
        log "=== scenario $s"
        rc=0
        "$BENCH_DIR/run.sh" "$s" || rc=$?
        if ((rc != 0)); then
            warn "scenario $s: exit status $rc"
            ((worst == 1)) || worst=$rc   # a failure (1) outranks "errors seen" (3)
        fi
    done
    return "$worst"
}

main "$@"
