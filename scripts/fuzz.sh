#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60)
# from the seed corpus in tests/fuzz/corpus. Exits non-zero when a target finds a crash; the
# input is left in build-fuzz/artifacts/ — add it to the target's corpus as a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v clang >/dev/null || { echo "clang is needed (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DPUBSUBGW_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_request fuzz_payload fuzz_event fuzz_publish
mkdir -p build-fuzz/artifacts
status=0
for target in request payload event publish; do
    work=$(mktemp -d)
    echo "== fuzz_$target for ${seconds}s"
    if ! build-fuzz/tests/fuzz_$target -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/$target- \
        "$work" "tests/fuzz/corpus/$target" 2>build-fuzz/fuzz_$target.log; then
        echo "fuzz_$target found a problem:" >&2
        tail -n 40 build-fuzz/fuzz_$target.log >&2
        status=1
    else
        grep -E "stat::number_of_executed_units|cov:" build-fuzz/fuzz_$target.log | tail -n 2
    fi
    rm -rf "$work"
done
exit $status
