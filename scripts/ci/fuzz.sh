#!/usr/bin/env bash
# Short libFuzzer run of every peernet-proto fuzz target (the long runs are recorded in
# docs/security.md). cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the
# machine's stable toolchain accept them. Seeds: peernet-proto/fuzz/corpus (committed).
# Usage: scripts/ci/fuzz.sh [SECONDS_PER_TARGET]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/../../peernet-proto"
secs="${1:-10}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz@0.13.2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo fuzz build -O
passed=0
failed=0
for t in $(cargo fuzz list); do
    mkdir -p "$work/$t"
    if cargo fuzz run -O "$t" "$work/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -max_len=4096 >"$work/$t.log" 2>&1; then
        echo "fuzz $t: ok ($(grep -E '^Done' "$work/$t.log"))"
        passed=$((passed + 1))
    else
        echo "fuzz $t: FAILED"
        tail -40 "$work/$t.log"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
