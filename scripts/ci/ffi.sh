#!/usr/bin/env bash
# C ABI checks: header up to date and every export guarded (cargo test), release build
# and `make install` into a temporary prefix, then against that install: the C suite
# (plain, static, ASan+UBSan, valgrind), the C/C++ examples (echo server + client run
# once, C++ example, the CMake package example), the Python ctypes suite and the Node
# koffi suite.
# Needs: cargo, cc, c++, make, cmake, pkg-config, valgrind, python3 with pytest, node + npm.
# Set PEERNET_BENCH=1 to also run the C-vs-Rust benchmark (it asserts nothing).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export RUST_BACKTRACE=0
WORK=$(mktemp -d /tmp/peernet-ffi-ci-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PREFIX=$WORK/prefix
export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
LIB=$PREFIX/lib/libpeernet.so.$(cat peernet-ffi/ABI_VERSION)

passed=0
failed=0
failures=()
run() {
    local name=$1
    shift
    echo "=== $name"
    local t0=$SECONDS
    if "$@"; then
        passed=$((passed + 1))
        echo "=== $name: ok ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "=== $name: FAILED ($((SECONDS - t0)) s)"
    fi
}

echo_roundtrip() {
    local ex=$WORK/ex d=$WORK/echo
    mkdir -p "$d"
    local ck
    ck=$("$ex/echo_client" "$d/client" --print-key) || return 1
    "$ex/echo_server" "$d/server" 127.0.0.1:0 "$ck" >"$d/server.out" 2>"$d/server.err" &
    local pid=$!
    for _ in $(seq 100); do grep -q '^port ' "$d/server.out" && break; sleep 0.05; done
    local sk sp rc
    sk=$(awk '/^key /{print $2}' "$d/server.out")
    sp=$(awk '/^port /{print $2}' "$d/server.out")
    timeout 60 "$ex/echo_client" "$d/client" "$sk" "127.0.0.1:$sp" hello "peer net"
    rc=$?
    kill -TERM "$pid"
    wait "$pid" || rc=1
    return $rc
}

# The CMake package: configure, build and run bindings/c/cmake-example against the
# install with find_package(peernet) alone (no pkg-config).
cmake_example() {
    local b=$WORK/cmake-example
    env -u PKG_CONFIG_PATH cmake -S bindings/c/cmake-example -B "$b" \
        -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release >"$b.log" 2>&1 &&
        cmake --build "$b" >>"$b.log" 2>&1 || { cat "$b.log"; return 1; }
    "$b/peernet_hello" | tee "$b.out" && grep -q '^listening 127.0.0.1:[1-9]' "$b.out"
}

node_suite() {
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error &&
        PEERNET_LIB=$LIB timeout 600 node --test --test-concurrency=1 test/)
}

run "cargo test -p peernet-ffi (header, export guard)" cargo test -p peernet-ffi
run "build + make install" make -s install PREFIX="$PREFIX"
run "build C suite (-Wall -Wextra -Werror)" make -s -C tests/c OUT="$WORK/c"
run "C suite" timeout 600 "$WORK/c/test_peernet"
run "C suite, static library" timeout 600 "$WORK/c/test_peernet_static"
run "C suite, ASan+UBSan" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 timeout 900 "$WORK/c/test_peernet_asan"
run "C suite, valgrind" timeout 1200 valgrind --quiet --max-threads=3000 --error-exitcode=99 --leak-check=full \
    --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
    --suppressions=tests/c/valgrind.supp "$WORK/c/test_peernet"
run "build examples (C, C++17)" make -s -C bindings/c OUT="$WORK/ex"
run "example: echo server + client" echo_roundtrip
run "example: C++ wrapper" timeout 120 "$WORK/ex/cpp_echo"
run "example: CMake find_package(peernet)" cmake_example
run "ctypes suite" env PEERNET_LIB="$LIB" timeout 600 python3 -m pytest -q -p no:cacheprovider tests/ctypes
run "node koffi suite" node_suite
if [ "${PEERNET_BENCH:-0}" = 1 ]; then
    cargo build --release -q -p peernet-ffi --example rust_bench &&
        "$WORK/c/bench" "$CARGO_TARGET_DIR/release/examples/rust_bench"
fi

for f in "${failures[@]}"; do echo "failed: $f"; done
echo "ffi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
