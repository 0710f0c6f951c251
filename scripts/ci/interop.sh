#!/usr/bin/env bash
# Cross-language RPC (issue 6): a C program (tests/interop/rpc_peer.c, built against
# include/peernet.h and libpeernet.so) and Python nodes (the `peernet` package) call each
# other's RPC, with and without the right, and revoke it live; and streams (issue 16):
# each writes to and reads from the other's streams, both ways, and sees the other's
# resets (tests/interop/test_stream_interop.py).
# Also: peernet-proto's SPAKE2 against python-spake2 (PyPI `spake2`, magic-wormhole's;
# python.sh installs it in its venv), required here rather than skipped.
# Usage: scripts/ci/interop.sh PYTHON   — an interpreter with `peernet`, pytest and
# pytest-timeout installed (scripts/ci/python.sh WORKDIR leaves one in WORKDIR/venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${1:?usage: scripts/ci/interop.sh PYTHON}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
PATH="$(dirname "$py"):$PATH" PEERNET_REQUIRE_SPAKE2_PY=1 \
    cargo test -q -p peernet-proto --test spake2_python
cargo build --release -q -p peernet-ffi
export PEERNET_LIB="$CARGO_TARGET_DIR/release/libpeernet.so"
cd tests/interop
"$py" -m pytest
