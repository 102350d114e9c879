#!/usr/bin/env bash
# Quick start: install what is missing, build, start the demo origin on
# 127.0.0.1:9000 and strata in front of it on 127.0.0.1:8080 (admin :8081).
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh demo
scripts/build.sh build

python3 scripts/demo_origin.py --listen 127.0.0.1:9000 &
origin_pid=$!
trap 'kill "$origin_pid" 2>/dev/null || true' EXIT

up=0
for _ in $(seq 50); do
    kill -0 "$origin_pid" 2>/dev/null || break
    if curl -fsS -o /dev/null http://127.0.0.1:9000/healthz 2>/dev/null; then up=1; break; fi
    sleep 0.1
done
if [ "$up" != 1 ]; then
    echo "the demo origin did not start on 127.0.0.1:9000 (is the port taken?)" >&2
    exit 1
fi

cat <<'MSG'
strata is starting on http://127.0.0.1:8080 (admin http://127.0.0.1:8081). Try:
  curl -i http://127.0.0.1:8080/api/products/1
  curl -s http://127.0.0.1:8081/stats
Ctrl-C stops strata and the demo origin.
MSG
build/strata -c config/examples/demo.yaml
