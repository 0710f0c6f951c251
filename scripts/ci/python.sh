#!/usr/bin/env bash
# Python package suite: build + install `./bindings/python` into a fresh venv, check the
# stubs (mypy stubtest on the compiled module, mypy --strict on the Python layer and the
# tests), run pytest, then build the release wheel with maturin and install it into a
# second fresh venv (no Rust involved) and run `peernet demo` from it; `auditwheel show`
# checks the wheel is a manylinux one.
#
# Usage: scripts/ci/python.sh [WORKDIR]   (default: a temporary directory, removed)
# Needs: python3 (>= 3.9) with venv, a Rust toolchain, network access to PyPI for the
# pinned tools below. Respects CARGO_TARGET_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PKG="$ROOT/bindings/python"
if [[ $# -ge 1 ]]; then
  WORK="$1"; mkdir -p "$WORK"
else
  WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
fi
PY="${PYTHON:-python3}"
TOOLS=(maturin==1.16.0 pytest==9.0.1 pytest-timeout==2.4.0 mypy==1.19.0 prometheus_client==0.26.0 auditwheel==6.8.2 spake2==0.9)

t0=$SECONDS
step() { echo "== [python.sh +$((SECONDS - t0))s] $*"; }

step "venv + pinned tools in $WORK/venv"
rm -rf "$WORK/venv" "$WORK/venv2" "$WORK/wheels"
"$PY" -m venv "$WORK/venv"
V="$WORK/venv/bin"
export PATH="$V:$PATH"  # the maturin build backend runs `maturin` from PATH
"$V/pip" install -q --upgrade pip
"$V/pip" install -q "${TOOLS[@]}"

step "pip install ./bindings/python (release build of the extension)"
"$V/pip" install -q --no-build-isolation "$PKG"

step "stubs: stubtest of peernet._peernet, mypy --strict of the package and tests"
# Run from $WORK so `peernet` is the installed package, not the source tree.
(cd "$WORK" && "$V/python" -m mypy.stubtest peernet._peernet)
(cd "$PKG" && "$V/python" -m mypy --strict --cache-dir "$WORK/mypy-cache" python/peernet tests)

step "pytest"
(cd "$PKG" && "$V/python" -m pytest -p no:cacheprovider tests) 2>&1 | tee "$WORK/pytest.txt"
[[ ${PIPESTATUS[0]} -eq 0 ]] || exit 1

step "maturin build --release, install the wheel into a fresh venv, run the demo"
(cd "$PKG" && "$V/maturin" build --release -q -o "$WORK/wheels")
# The wheel must be a manylinux one (docs/python.md names the tag it gets here).
"$V/auditwheel" show "$WORK"/wheels/peernet-*.whl | tee "$WORK/auditwheel.txt"
tr -s ' \n' ' ' < "$WORK/auditwheel.txt" | grep -q 'consistent with the following platform tag: "manylinux_' \
  || { echo "python.sh: the wheel is not a manylinux wheel (auditwheel above)"; exit 1; }
"$PY" -m venv "$WORK/venv2"
"$WORK/venv2/bin/pip" install -q --no-index "$WORK"/wheels/peernet-*.whl
(cd "$WORK" && "$WORK/venv2/bin/python" -c "import peernet, peernet._peernet; print('wheel imports, version', peernet.__version__)")
(cd "$WORK" && "$WORK/venv2/bin/peernet" demo > "$WORK/demo.txt") || { cat "$WORK/demo.txt"; exit 1; }
tail -1 "$WORK/demo.txt"

step "done"
# The runner's own summary, last, for whoever reads the closing line.
grep -E "^=+ .*(passed|failed).* =+$" "$WORK/pytest.txt" | tail -1
