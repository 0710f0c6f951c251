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
step "cargo test"
cargo test --workspace --no-fail-fast
for part in ffi python netns; do
    if [ -x "scripts/ci/$part.sh" ]; then
        step "scripts/ci/$part.sh"
        "scripts/ci/$part.sh"
    fi
done
step "all suites passed"
