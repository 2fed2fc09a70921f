#!/usr/bin/env bash
# Builds pubsubgw and runs every test (unit and integration against a private Prosody that the
# tests start themselves) through CTest.
#   scripts/test.sh              normal build in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
#   scripts/test.sh --valgrind   the integration tests with the gateway under valgrind memcheck
set -euo pipefail
cd "$(dirname "$0")/.."
"scripts/deps.sh"
dir=build
opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
    dir=build-asan
    opts=(-DCMAKE_BUILD_TYPE=Debug -DPUBSUBGW_SANITIZE=ON)
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
    export PUBSUBGW_SANITIZE=1 # tests judge no absolute memory figures under a sanitizer
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
labels=()
if [ "${1:-}" = "--valgrind" ]; then
    command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
    export PUBSUBGW_VALGRIND=1
    labels=(-L integration)
fi
cmake -S . -B "$dir" "${opts[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j 2 "${labels[@]}"
