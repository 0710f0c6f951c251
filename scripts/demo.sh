#!/usr/bin/env bash
# Runs the PeerNet demo: several nodes in one process on loopback showing discovery,
# pairing, call, send, streams and send_file, default-deny errors, RPC and reconnect
# after a restart.
# First use builds the Python package into .venv (needs python3 with venv and a Rust
# toolchain; a few minutes); later runs rebuild only when the sources changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$(realpath -m "${PEERNET_VENV:-.venv}")"
stamp="$VENV/.peernet-built"
stale() {
    [ ! -x "$VENV/bin/peernet" ] || [ ! -f "$stamp" ] ||
        [ -n "$(find bindings/python peernet-core peernet-proto Cargo.toml Cargo.lock \
                 -newer "$stamp" -type f ! -name '*.so' ! -path '*/__pycache__/*' 2>/dev/null | head -1)" ]
}
if stale; then
    echo "demo: building the Python package into $VENV (first run takes a few minutes)..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q maturin==1.16.0
    PATH="$VENV/bin:$PATH" "$VENV/bin/pip" install -q --no-build-isolation --force-reinstall --no-deps ./bindings/python
    touch "$stamp"
fi
exec "$VENV/bin/peernet" demo "$@"
