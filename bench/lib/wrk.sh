# shellcheck shell=bash disable=SC2034  # globals here are read by run.sh
# bench/lib/wrk.sh - run wrk with the shared settings and parse its output.

# wrk settings shared by every target of a run (env overridable).
WRK_THREADS=${BENCH_THREADS:-1}
WRK_CONNS=${BENCH_CONNS:-64}
WRK_DURATION=${BENCH_DURATION:-10}      # seconds
WRK_WARMUP=${BENCH_WARMUP:-2}           # seconds per target before round 1; 0 = none
# Optional Lua script (wrk -s) and its arguments (after `--`), set by a
# scenario; empty = wrk's static request for the target URL.
WRK_SCRIPT=""
WRK_SCRIPT_ARGS=()
# Extra wrk options set by a scenario (e.g. -H "Connection: close").
WRK_EXTRA_ARGS=()

wrk_settings() {
    printf 'wrk -t%s -c%s -d%ss --latency' "$WRK_THREADS" "$WRK_CONNS" "$WRK_DURATION"
    ((${#WRK_EXTRA_ARGS[@]} == 0)) || printf ' -H "%s"' "${WRK_EXTRA_ARGS[1]}"
    if [[ -n "$WRK_SCRIPT" ]]; then
        printf ' -s %s' "${WRK_SCRIPT#"$BENCH_DIR/"}"
        ((${#WRK_SCRIPT_ARGS[@]} == 0)) || printf ' URL -- %s' "${WRK_SCRIPT_ARGS[*]}"
    fi
}

# run_wrk URL OUTFILE [DURATION] - one bounded wrk run on the client CPU,
# raw output kept in OUTFILE. Runs in the background and is waited for, so a
# signal to the harness is handled at once; WRK_PID lets cleanup stop it.
WRK_PID=""
run_wrk() {
    local url=$1 out=$2 dur=${3:-$WRK_DURATION} rc=0 script=()
    if [[ -n "$WRK_SCRIPT" ]]; then
        script=(-s "$WRK_SCRIPT" "$url")
        ((${#WRK_SCRIPT_ARGS[@]} == 0)) || script+=(-- "${WRK_SCRIPT_ARGS[@]}")
    else
        script=("$url")
    fi
    timeout --kill-after=5 $((dur + 30)) \
        "${PIN_CLIENT[@]}" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${dur}s" --latency \
        ${WRK_EXTRA_ARGS[@]+"${WRK_EXTRA_ARGS[@]}"} "${script[@]}" \
        >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || rc=$?
    WRK_PID=""
    if ((rc != 0)); then
        cat "$out" >&2
        die "wrk failed against $url (status $rc, output above)"
    fi
}

# stop_wrk - stop a wrk run still in flight (called from cleanup).
stop_wrk() {
    [[ -n "$WRK_PID" ]] || return 0
    kill -TERM "$WRK_PID" 2>/dev/null || true
    wait "$WRK_PID" 2>/dev/null || true
    WRK_PID=""
}

# parse_wrk OUTFILE - sets WRK_RPS, WRK_P50_MS, WRK_P99_MS, WRK_REQUESTS,
# WRK_NON2XX (count), WRK_SOCKERR (connect+read+write+timeout) and WRK_MBS
# (Transfer/sec in MB/s, 10^6 bytes: wrk prints binary units, converted).
parse_wrk() {
    local f=$1 line
    line=$(awk '
        function ms(v) {   # "812.00us" | "1.23ms" | "2.01s" | "1.00m" -> milliseconds
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
            if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
            return "nan"
        }
        /Latency Distribution/ { dist = 1; next }
        dist && $1 == "50%" { p50 = ms($2) }
        dist && $1 == "99%" { p99 = ms($2); dist = 0 }
        / requests in / { reqs = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { gsub(/,/, ""); sock = $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /^Transfer\/sec:/ { v = $2; m = 1
            if (v ~ /GB$/) m = 1073741824; else if (v ~ /MB$/) m = 1048576; else if (v ~ /KB$/) m = 1024
            sub(/[KMG]?B$/, "", v); mbs = v * m / 1e6 }
        END {
            printf "%s %s %s %s %d %d %s\n", (rps == "" ? "nan" : rps), (p50 == "" ? "nan" : p50),
                (p99 == "" ? "nan" : p99), (reqs == "" ? 0 : reqs), non2xx, sock, (mbs == "" ? "nan" : mbs)
        }' "$f")
    read -r WRK_RPS WRK_P50_MS WRK_P99_MS WRK_REQUESTS WRK_NON2XX WRK_SOCKERR WRK_MBS <<<"$line"
    [[ "$WRK_RPS" != nan && "$WRK_P99_MS" != nan ]] || {
        cat "$f" >&2
        die "could not parse wrk output in $f (above)"
    }
}
