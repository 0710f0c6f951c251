#!/usr/bin/env bash
# Runs every test suite: formatting, lints, Rust tests, the C ABI suites (C under
# sanitizers and valgrind, ctypes, Node/koffi), the Python package, and the
# multi-host network-namespace test. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
start=$(date +%s)
step() { printf '\n==== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "cargo test (includes the network-namespace test, skipped with a reason if not root)"
cargo test --workspace --no-fail-fast
step "scripts/ci/ffi.sh (C suite with sanitizers and valgrind, examples, ctypes, Node)"
scripts/ci/ffi.sh
pywork="$(mktemp -d)"
trap 'rm -rf "$pywork"' EXIT
step "scripts/ci/python.sh (wheel, stubs, pytest, demo from the wheel)"
scripts/ci/python.sh "$pywork"
step "scripts/ci/interop.sh (RPC between C and Python)"
scripts/ci/interop.sh "$pywork/venv/bin/python"
step "scripts/ci/hardening.sh (flood, load, faults, 30-host LAN)"
scripts/ci/hardening.sh
step "scripts/ci/miri.sh (Miri over the sans-IO protocol crate)"
scripts/ci/miri.sh
step "scripts/ci/fuzz.sh (every fuzz target, briefly)"
scripts/ci/fuzz.sh 10
step "scripts/ci/bench.sh (benchmark smoke run; judges no speed)"
scripts/ci/bench.sh
step "all suites passed"
