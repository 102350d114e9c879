#!/usr/bin/env bash
# Quick start: install what is missing, build, start the demo origin on
# 127.0.0.1:9000 and strata in front of it on 127.0.0.1:8080 (admin :8081).
# DEMO_ORIGIN, DEMO_LISTEN and DEMO_ADMIN (HOST:PORT) choose other addresses.
# Ctrl-C, or SIGTERM to this script, stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEMO_ORIGIN=${DEMO_ORIGIN:-127.0.0.1:9000}
export DEMO_LISTEN=${DEMO_LISTEN:-127.0.0.1:8080}
export DEMO_ADMIN=${DEMO_ADMIN:-127.0.0.1:8081}

scripts/install-deps.sh demo
scripts/build.sh build

pids=()
stop() {
    [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

python3 scripts/demo_origin.py --listen "$DEMO_ORIGIN" &
pids+=($!)

up=0
for _ in $(seq 50); do
    kill -0 "${pids[0]}" 2>/dev/null || break
    if curl -fsS -o /dev/null "http://$DEMO_ORIGIN/healthz" 2>/dev/null; then up=1; break; fi
    sleep 0.1
done
if [ "$up" != 1 ]; then
    echo "the demo origin did not start on $DEMO_ORIGIN (is the port taken?)" >&2
    exit 1
fi

cat <<MSG
strata is starting on http://$DEMO_LISTEN (admin http://$DEMO_ADMIN). Try:
  curl -i http://$DEMO_LISTEN/api/products/1
  curl -s http://$DEMO_ADMIN/stats
Ctrl-C stops strata and the demo origin.
MSG
# In the background, so that a signal to this script is handled at once (a
# foreground child would hold the trap until it exits).
build/strata -c config/examples/demo.yaml &
pids+=($!)
wait "${pids[1]}"
