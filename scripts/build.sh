#!/usr/bin/env bash
# Configure (once) and build strata into build/ (or $1 with extra meson options after it).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null
elif [ $# -gt 0 ]; then
    meson configure "$dir" "$@" >/dev/null
fi
ninja --quiet -C "$dir"
