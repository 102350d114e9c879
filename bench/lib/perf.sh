# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/lib/perf.sh - the two composite commands of bench/run.sh:
#
# run_perf  (`bench/run.sh perf`): installs every peer, then runs the hit
#   scenarios cache-hit, cache-hot, cache-big, cache-conn and the stampede,
#   each in its own harness process with every peer (strata, nginx
#   proxy_cache with and without open_file_cache, Varnish, HAProxy, ATS) and
#   the limit, and collects their figures (BENCH_TSV) into one summary
#   (bench/py/perf_report.py): a markdown table per scenario, strata against
#   the targets, and a gnuplot chart (BENCH_PERF_PNG, default bench/perf.png).
#   Everything goes to BENCH_RESULTS_DIR/perf-<UTC stamp>/ as well.
#   BENCH_PERF_SCENARIOS overrides the scenario list; BENCH_PERF_INSTR=0
#   skips the closing `run.sh instr` (whose table joins the summary).
#
# run_instr (`bench/run.sh instr`): instructions per cached hit, with
#   valgrind --tool=callgrind, for strata and for nginx proxy_cache (without
#   and with open_file_cache; `master_process off; daemon off;` so callgrind
#   sees the one process that serves). Each server runs twice under
#   callgrind: once with only the start, the fill (BENCH_INSTR_FILL requests
#   on one key, default 10: 1 miss + 9 hits) and the stop, and once with
#   BENCH_INSTR_HITS (default 10000) more hits on the same key over the same
#   keep-alive connection (bench/py/keepalive_client.py). Instructions per
#   hit = (Ir_N - Ir_0) / N: start-up, fill and shutdown cancel out.

PERF_SCENARIOS=${BENCH_PERF_SCENARIOS:-cache-hit cache-hot cache-big cache-conn stampede}

perf_tools() {
    ensure_tools wrk:wrk nginx:nginx-light curl:curl meson:meson ninja:ninja-build varnishd:varnish \
        haproxy:haproxy traffic_server:trafficserver gnuplot:gnuplot-nox valgrind:valgrind
}

run_perf() {
    local stamp dir s rc worst=0 png=${BENCH_PERF_PNG:-$BENCH_DIR/perf.png}
    perf_tools
    stamp=$(date -u +%Y-%m-%dT%H%MZ)
    dir="$RESULTS_DIR/perf-$stamp"
    mkdir -p "$dir"
    : >"$dir/perf.tsv"
    for s in $PERF_SCENARIOS; do
        log "=== perf: scenario $s"
        rc=0
        BENCH_TSV="$dir/perf.tsv" BENCH_RESULTS_DIR="$dir" "$BENCH_DIR/run.sh" "$s" || rc=$?
        if ((rc != 0)); then
            warn "scenario $s: exit status $rc"
            ((worst == 1)) || worst=$rc
        fi
    done
    if [[ "${BENCH_PERF_INSTR:-1}" == 1 ]]; then
        log "=== perf: instructions per hit (run.sh instr)"
        BENCH_INSTR_OUT="$dir/instr.md" BENCH_RESULTS_DIR="$dir" "$BENCH_DIR/run.sh" instr || worst=1
    fi
    local machine
    machine="$(uname -m), $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)"
    "${BENCH_PYTHON:-/usr/bin/python3}" "$BENCH_DIR/py/perf_report.py" "$dir/perf.tsv" "$dir" \
        "$(date -u '+%Y-%m-%d %H:%M UTC')" "$machine" \
        "$(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)" >"$dir/summary.md" \
        || die "perf_report.py failed"
    if have_tool gnuplot && [[ -f "$dir/chart.gp" ]]; then
        (cd "$dir" && gnuplot chart.gp) && cp "$dir/perf.png" "$png" && log "chart: $png"
    fi
    cat "$dir/summary.md"
    log "summary: $dir/summary.md (scenario sections: $dir/*.md)"
    return "$worst"
}

# ---------------------------------------------------------------- instr
# instr_one NAME N - start server NAME under callgrind, run the client with
# the fill plus N hits, stop it; sets INSTR_IR to its total Ir. (Not run in
# $(...): the server must stay a child of this shell, for the cleanup.)
instr_one() {
    local name=$1 n=$2 out pid url total i
    out="$BENCH_TMP/callgrind.$name.$n.out"
    BENCH_WRAP=(valgrind --tool=callgrind --callgrind-out-file="$out" --trace-children=no)
    WAIT_TRIES=600
    case $name in
        strata) strata_start "$ORIGIN_ADDR" cache-aside 10m; pid=$STRATA_PID url="$STRATA_URL/item/1" ;;
        nginx-cache) NGINX_CACHE_MASTER=off nginx_cache_start "$ORIGIN_ADDR" "instr-ngx-$n" 0
            pid=$NGINX_CACHE_PID url="$NGINX_CACHE_URL/item/1" ;;
        nginx-cache-ofc) NGINX_CACHE_MASTER=off nginx_cache_start "$ORIGIN_ADDR" "instr-ngxofc-$n" 1
            pid=$NGINX_CACHE_PID url="$NGINX_CACHE_URL/item/1" ;;
    esac
    BENCH_WRAP=() WAIT_TRIES=100
    "${PIN_CLIENT[@]}" "$BENCH_PYTHON" "$BENCH_DIR/py/keepalive_client.py" "$url" "$INSTR_FILL" "$n" \
        >"$BENCH_TMP/instr-client-$name-$n.json" || die "instr client failed against $name: $(cat "$BENCH_TMP/instr-client-$name-$n.json")"
    log "$name, $n hits: $(cat "$BENCH_TMP/instr-client-$name-$n.json")"
    # Stop it ourselves: under valgrind the exit (and the dump) takes a while.
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$pid"
    total=$(awk '/^(summary|totals):/ { print $2; exit }' "$out" 2>/dev/null)
    [[ -n "$total" ]] || die "no callgrind totals in $out"
    INSTR_IR=$total
}

run_instr() {
    ensure_tools nginx:nginx-light curl:curl meson:meson ninja:ninja-build valgrind:valgrind
    setup_pinning
    BENCH_TMP=$(mktemp -d /tmp/strata-bench.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    INSTR_FILL=${BENCH_INSTR_FILL:-10}
    local hits=${BENCH_INSTR_HITS:-10000} name ir0 irn per section results
    local -A PER=()
    strata_build
    origin_nginx_start "max-age=3600"
    section="$BENCH_TMP/instr.md"
    {
        printf '## %s - instructions per cached hit (callgrind)\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
        printf -- '- machine: %s, %s CPUs; valgrind %s; strata %s, commit %s\n' "$(uname -m)" "$(nproc)" \
            "$(valgrind --version)" "$("$STRATA_BIN" --version 2>/dev/null)" \
            "$(git -C "$REPO_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
        printf -- '- client: bench/py/keepalive_client.py, one keep-alive connection, GET /item/1 (1 KiB, max-age=3600): %s fill requests (1 miss + hits), then N = %s hits; each server started under `valgrind --tool=callgrind` twice (N = 0 and N = %s); Ir per hit = (Ir_N - Ir_0) / N\n\n' \
            "$INSTR_FILL" "$hits" "$hits"
        printf '| server | Ir, N = 0 | Ir, N = %s | Ir per hit | strata / this |\n|---|---:|---:|---:|---:|\n' "$hits"
    } >"$section"
    for name in strata nginx-cache nginx-cache-ofc; do
        instr_one "$name" 0
        ir0=$INSTR_IR
        instr_one "$name" "$hits"
        irn=$INSTR_IR
        PER[$name]=$(awk -v a="$irn" -v b="$ir0" -v n="$hits" 'BEGIN { printf "%.0f", (a - b) / n }')
        log "$name: Ir_0 $ir0, Ir_$hits $irn: ${PER[$name]} instructions per hit"
        printf '%s\t%s\t%s\n' "$name" "$ir0" "$irn" >>"$BENCH_TMP/instr.tsv"
    done
    while IFS=$'\t' read -r name ir0 irn; do
        printf '| %s | %s | %s | %s | %s |\n' "$name" "$ir0" "$irn" "${PER[$name]}" "$(ratio "${PER[strata]}" "${PER[$name]}")" >>"$section"
    done <"$BENCH_TMP/instr.tsv"
    printf '\nnginx-cache = nginx proxy_cache as in the hit scenarios (`master_process off; daemon off;`, one process); nginx-cache-ofc = the same plus `open_file_cache max=10000`. Target: strata / nginx proxy_cache <= 0.5.\n\n' >>"$section"
    cat "$section"
    mkdir -p "$RESULTS_DIR"
    results="$RESULTS_DIR/instr-$(date -u +%Y-%m-%d).md"
    cat "$section" >>"$results"
    [[ -z "${BENCH_INSTR_OUT:-}" ]] || cp "$section" "$BENCH_INSTR_OUT"
    log "appended to $results"
}
