#!/usr/bin/env bash
# PeerNet and rust-libp2p on the same work, in the same run: builds peernet-bench and
# peernet-bench/peers-libp2p (a measurement-only crate outside the workspace) in
# release, runs both in alternation for ROUNDS rounds (default 3) on the call RTT,
# pipelined call, 64 KiB bulk and new-connection rows, on both tokio runtime flavours,
# and prints the medians as `work | rust-libp2p | PeerNet | PeerNet / libp2p`.
#
# Usage: scripts/bench-peers.sh [ROUNDS] [--quick]
#   --quick  peernet-bench's short budgets (0.4 s per figure instead of 2.5 s)
#
# Not part of CI (scripts/test-all.sh never builds rust-libp2p). Needs cargo, python3
# and crates.io (or a filled cargo cache) for the first build. Traffic: 127.0.0.1 only;
# every loop in both binaries is bounded in count and time. A full run of 3 rounds
# takes about 3 min after the build. See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 2
ROUNDS=3
QUICK=()
for a in "$@"; do
    case $a in
        --quick) QUICK=(--quick) ;;
        '' | *[!0-9]*) echo "usage: scripts/bench-peers.sh [ROUNDS] [--quick]" >&2; exit 2 ;;
        *) ROUNDS=$a ;;
    esac
done
[ "$ROUNDS" -ge 1 ] || { echo "ROUNDS must be at least 1" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
export CARGO_TERM_COLOR=never
echo "building peernet-bench and peers-libp2p (release)..." >&2
cargo build -q --release -p peernet-bench
cargo build -q --release --locked --manifest-path peernet-bench/peers-libp2p/Cargo.toml
PN=$CARGO_TARGET_DIR/release/peernet-bench
LP=$CARGO_TARGET_DIR/release/peers-libp2p
OUT=$(mktemp -d /tmp/bench-peers-XXXXXX)
trap 'rm -rf "$OUT"' EXIT

run() { # name, output file, command...
    local name=$1 out=$2
    shift 2
    echo "round $r: $name" >&2
    if ! "$@" > "$out" 2> "$out.err"; then
        echo "$name failed:" >&2
        cat "$out" "$out.err" >&2
        exit 1
    fi
    grep '^row ' "$out" | sed "s/^/$r /" >> "$OUT/rows"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
    # Alternate which one goes first, so drift of a shared machine hits both.
    if [ $((r % 2)) -eq 1 ]; then
        run peernet-bench "$OUT/pn.$r" "$PN" --only rtt,pipe,send,hs --no-ceilings --lines "${QUICK[@]}"
        run peers-libp2p "$OUT/lp.$r" "$LP" "${QUICK[@]}"
    else
        run peers-libp2p "$OUT/lp.$r" "$LP" "${QUICK[@]}"
        run peernet-bench "$OUT/pn.$r" "$PN" --only rtt,pipe,send,hs --no-ceilings --lines "${QUICK[@]}"
    fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

CPU=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
LIBP2P=$(grep -A1 '^name = "libp2p"$' peernet-bench/peers-libp2p/Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
echo "## PeerNet and rust-libp2p $LIBP2P, same run ($ROUNDS rounds, medians${QUICK:+, --quick})"
echo
echo "machine: $(nproc) CPUs, $CPU; load average before: $LOAD_BEFORE, after: $LOAD_AFTER"
echo
python3 - "$OUT/rows" "$ROUNDS" <<'PY'
import statistics
import sys

path, rounds = sys.argv[1], int(sys.argv[2])
vals = {}
for line in open(path):
    w = line.split()
    # "<round> row <impl> <flavour> <name> <value>"
    if len(w) != 6 or w[1] != "row":
        sys.exit(f"unreadable line: {line!r}")
    vals.setdefault((w[2], w[3], w[4]), []).append(float(w[5]))

ROWS = [
    ("rtt_p50_s", "call RTT p50, 64 B, 1 in flight (lower is better)", "us"),
    ("rtt_p99_s", "call RTT p99, 64 B, 1 in flight (lower is better)", "us"),
    ("pipe_calls_per_s", "pipelined calls, 64 B, 64 in flight", "calls"),
    ("send_bytes_per_s", "one-way 64 KiB messages", "GB/s"),
    ("hs_per_s", "new connections (dial + XX + first exchange + close), 8 clients", "conns"),
]

def fmt(v, unit):
    if unit == "us":
        return f"{v * 1e6:,.1f} µs"
    if unit == "GB/s":
        return f"{v / 1e9:.2f} GB/s"
    return f"{v:,.0f} {unit}/s"

print("| work | rust-libp2p | PeerNet | PeerNet / libp2p |")
print("|---|---:|---:|---:|")
spread = []
missing = []
for flavour in ("mt", "ct"):
    for key, work, unit in ROWS:
        lp = vals.get(("rust-libp2p", flavour, key), [])
        pn = vals.get(("peernet", flavour, key), [])
        if len(lp) != rounds or len(pn) != rounds:
            missing.append(f"{key} [{flavour}]: {len(lp)} libp2p and {len(pn)} PeerNet figures of {rounds}")
            continue
        ml, mp = statistics.median(lp), statistics.median(pn)
        ratio = mp / ml
        ratio = f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.3f}×"
        print(f"| {work} [{flavour}] | {fmt(ml, unit)} | {fmt(mp, unit)} | {ratio} |")
        spread.append(f"{key} [{flavour}]: libp2p {fmt(min(lp), unit)} .. {fmt(max(lp), unit)}; "
                      f"PeerNet {fmt(min(pn), unit)} .. {fmt(max(pn), unit)}")
print()
print("Each cell is the median of the rounds; range of the rounds:")
for s in spread:
    print(f"- {s}")
if missing:
    print("\nMissing figures (a measurement failed):")
    for m in missing:
        print(f"- {m}")
    sys.exit(1)
PY
