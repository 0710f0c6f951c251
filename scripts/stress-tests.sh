#!/usr/bin/env bash
# Runs the suites that exercise timing — the Rust tests (unit + integration), the C
# suite (plain and ASan+UBSan), the ctypes, Node.js and Python suites — N times each
# while the machine is loaded, and prints each suite's pass count. A test that passes
# only on a quiet machine shows up here as k/N with k < N.
#
# Usage: scripts/stress-tests.sh [N]          (default 10)
#   STRESS_LOADERS=K   busy loops to start (default: two per core)
#   STRESS_MAX_SECS=S  hard bound on the loaders' life (default 7200 s); they are also
#                      stopped when the script exits, however it exits
#
# Builds everything once first (quietly, not loaded). Needs what scripts/test-all.sh
# needs (cargo, cc, make, pkg-config, python3 with venv, node + npm); the netns test in
# the Rust suite needs root and skips with a reason otherwise. Sends traffic only to
# loopback, like every suite it runs.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
N=${1:-10}
case $N in '' | *[!0-9]*) echo "usage: scripts/stress-tests.sh [N]   (N a whole number)" >&2; exit 2 ;; esac
LOADERS=${STRESS_LOADERS:-$(( 2 * $(nproc) ))}
MAX_SECS=${STRESS_MAX_SECS:-7200}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_TERM_COLOR=never RUST_BACKTRACE=0
WORK=$(mktemp -d /tmp/peernet-stress-XXXXXX)
LOADER_PIDS=()
stop_load() {
    for p in "${LOADER_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait "${LOADER_PIDS[@]}" 2>/dev/null
    LOADER_PIDS=()
}
trap 'stop_load; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

say() { printf '== [stress +%ss] %s\n' "$SECONDS" "$*"; }

# ---- build once ------------------------------------------------------------------
PREFIX=$WORK/prefix
export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
LIB=$PREFIX/lib/libpeernet.so.$(cat peernet-ffi/ABI_VERSION)
say "building (Rust tests, libpeernet, C suite, Node deps, Python venv)"
cargo test --workspace --no-run -q 2>"$WORK/build.log" || { cat "$WORK/build.log"; exit 1; }
make -s install PREFIX="$PREFIX" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
make -s -C tests/c OUT="$WORK/c" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error) >"$WORK/build.log" 2>&1 ||
    { cat "$WORK/build.log"; exit 1; }
python3 -m venv "$WORK/venv"
V=$WORK/venv/bin
{
    "$V/pip" install -q --upgrade pip &&
        "$V/pip" install -q maturin==1.16.0 pytest==9.0.1 pytest-timeout==2.4.0 &&
        PATH="$V:$PATH" "$V/pip" install -q --no-build-isolation ./bindings/python
} >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }

# ---- the suites ------------------------------------------------------------------
rust_suite() { cargo test --workspace --no-fail-fast -q; }
c_plain() { timeout 600 "$WORK/c/test_peernet"; }
c_asan() {
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        timeout 900 "$WORK/c/test_peernet_asan"
}
ctypes_suite() { PEERNET_LIB="$LIB" timeout 600 "$V/python" -m pytest -q -p no:cacheprovider tests/ctypes; }
node_suite() { (cd tests/node && PEERNET_LIB=$LIB timeout 600 node --test --test-concurrency=1 test/); }
python_suite() { (cd bindings/python && timeout 900 "$V/python" -m pytest -q -p no:cacheprovider tests); }
SUITES=(rust_suite c_plain c_asan ctypes_suite node_suite python_suite)
declare -A PASSED

say "starting $LOADERS busy loops (bounded to ${MAX_SECS} s)"
for _ in $(seq "$LOADERS"); do
    timeout "$MAX_SECS" sh -c 'while :; do :; done' &
    LOADER_PIDS+=($!)
done

for s in "${SUITES[@]}"; do
    PASSED[$s]=0
    for i in $(seq "$N"); do
        log=$WORK/$s.$i.log
        t0=$SECONDS
        if "$s" >"$log" 2>&1; then
            PASSED[$s]=$(( ${PASSED[$s]} + 1 ))
            say "$s run $i/$N: ok ($(( SECONDS - t0 )) s)"
        else
            say "$s run $i/$N: FAILED ($(( SECONDS - t0 )) s); last lines:"
            tail -30 "$log" | sed 's/^/    /'
            cp "$log" "/tmp/peernet-stress-$s.$i.log"
            say "full log kept in /tmp/peernet-stress-$s.$i.log"
        fi
    done
done
stop_load

echo
echo "stress: $N runs per suite under $LOADERS busy loops on $(nproc) cores"
total_ok=0
total_bad=0
for s in "${SUITES[@]}"; do
    printf '  %-14s %s/%s\n' "$s" "${PASSED[$s]}" "$N"
    total_ok=$(( total_ok + PASSED[$s] ))
    total_bad=$(( total_bad + N - PASSED[$s] ))
done
echo "$total_ok passed, $total_bad failed"
[ "$total_bad" -eq 0 ]
