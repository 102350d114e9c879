#!/usr/bin/env bash
# Install the Debian 12 packages strata needs. One script for the README,
# the Dockerfile and CI.
#   scripts/install-deps.sh build     compilers, meson, -dev libraries
#   scripts/install-deps.sh test      build + cmocka, pytest, redis-server, curl, promtool (prometheus),
#                                     chromium (the dashboard test, headless)
#   scripts/install-deps.sh runtime   shared libraries only (container image)
#   scripts/install-deps.sh demo      build + python3 and curl for the demo origin
#   scripts/install-deps.sh fuzz      build + clang and its libFuzzer runtime
set -euo pipefail

profile=${1:-build}

runtime_pkgs=(libuv1 libhiredis0.14 libxxhash0 libjemalloc2 libyaml-0-2 ca-certificates)
build_pkgs=(gcc pkg-config meson ninja-build node-llhttp libuv1-dev libhiredis-dev
            libxxhash-dev libjemalloc-dev libyaml-dev)
test_pkgs=(libcmocka-dev python3 python3-pytest python3-pytest-timeout redis-server curl prometheus
           chromium)
demo_pkgs=(python3 curl)
fuzz_pkgs=(clang libclang-rt-14-dev)

case "$profile" in
runtime) want=("${runtime_pkgs[@]}") ;;
build) want=("${build_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
demo) want=("${build_pkgs[@]}" "${demo_pkgs[@]}") ;;
fuzz) want=("${build_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
*) echo "usage: $0 build|test|runtime|demo|fuzz" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    as_root=(sudo)
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
