#!/usr/bin/env bash
# Benchmark smoke run: builds peernet-bench in release and runs it with --quick
# (loopback only, < 30 s of measuring). Speed is never asserted: this fails only when a
# measurement itself fails (an error, a timeout), which the binary reports with a
# non-zero exit. Unit tests of the crate run with `cargo test --workspace`.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --release -p peernet-bench
if cargo run -q --release -p peernet-bench -- --quick > /tmp/peernet-bench.$$.md 2>/tmp/peernet-bench.$$.err; then
    cat /tmp/peernet-bench.$$.md
    rm -f /tmp/peernet-bench.$$.md /tmp/peernet-bench.$$.err
    echo "1 passed, 0 failed"
else
    cat /tmp/peernet-bench.$$.md /tmp/peernet-bench.$$.err
    rm -f /tmp/peernet-bench.$$.md /tmp/peernet-bench.$$.err
    echo "0 passed, 1 failed"
    exit 1
fi
