#!/usr/bin/env bash
# Miri (undefined-behaviour checker) over the sans-IO protocol crate, where it runs:
# every test that does not reach ring's C/assembly AEAD and digest (keyfile
# fingerprints, cacophony), which Miri cannot execute; the channel and the connection
# machine run on the `rustcrypto` backend.
# Needs the nightly toolchain's miri component; installs it when rustup can.
# Miri runs ~1000x slower than native and every connection test does a real Noise
# handshake in interpreted X25519: by default CI runs the channel and the connection
# machine's main tests (minutes); PEERNET_MIRI_FULL=1 adds the fault and drain tests
# (about half an hour on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    if ! rustup component add --toolchain nightly miri >/dev/null 2>&1; then
        echo "miri: not run: no nightly toolchain with the miri component can be installed on this machine"
        exit 0
    fi
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/miri"
cargo +nightly miri setup >/dev/null
# (The library's own unit tests run below, on the pure-Rust backend: one of them builds
# a channel, which on the default backend would reach ring's assembly.)
cargo +nightly miri test -p peernet-proto \
    --test envelope --test hello --test announce --test backoff --test heartbeat --test trustfile
# The channel, the handshake's split and the connection machine on the pure-Rust AEAD
# backend (ring's assembly is never reached: snow's default resolver is pure Rust too).
# The stream layer's unit tests (`stream::`, ~40 tests, moving up to 64 MiB through the
# codec) are slow under Miri (the 32 lightest alone take 172 s; the transfer and
# fairness ones far longer) and are safe Rust over byte slices (the crate forbids
# `unsafe`): they run natively in `cargo test`, and here only with PEERNET_MIRI_FULL=1.
extra=()
skip=(--skip stream::)
if [ "${PEERNET_MIRI_FULL:-0}" = 1 ]; then
    extra=(--test connection_faults --test connection_drain)
    skip=()
fi
cargo +nightly miri test -p peernet-proto --features rustcrypto --lib \
    --test channel --test connection "${extra[@]}" -- "${skip[@]}"
