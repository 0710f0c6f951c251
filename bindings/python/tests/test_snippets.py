"""Every fenced ```python block of README.md and docs/*.md runs (or is marked skipped
with a reason), and so do the shell blocks marked to run.

Markers: an HTML comment on the lines just before the fence (docs/README.md, "Tested
snippets", describes them):

- no marker, or ``<!-- snippet: run -->``: the block runs alone in a fresh process;
- ``<!-- snippet: pair -->``: the block is one side of two machines: it runs in two
  processes at once (alice and bob), each with ``peer_key`` the other's key;
- ``<!-- snippet: skip REASON -->``: not run (a fragment, pseudo-code); REASON required;
- ``<!-- snippet: sh -->`` before a ```sh block: each line runs in a shell, with
  ``peernet`` this Python's command line and ``PEERNET_DIR`` a temporary directory.

Both processes of a pair, and a single one, must exit 0. tests/snippets/prelude.py,
run before each block, moves data dirs to a temporary directory and every address and
discovery broadcast to loopback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import peernet
from conftest import free_udp_port

REPO = Path(__file__).resolve().parents[3]
PRELUDE = Path(__file__).with_name("snippets") / "prelude.py"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*snippet:\s*(\w+)\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\w*)")
TIMEOUT = 30.0


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    mode: str  # run, pair, skip, sh, unchecked
    reason: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    marker: tuple[str, str] | None = None
    while i < len(lines):
        line = lines[i]
        m = MARKER.search(line)
        if m:
            marker = (m.group(1), m.group(2))
            i += 1
            continue
        f = FENCE.match(line)
        if not f:
            if line.strip():
                marker = None  # a marker applies to the very next block only
            i += 1
            continue
        lang, start = f.group(1), i + 1
        j = start
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        code = "\n".join(lines[start:j]) + "\n"
        if lang == "python":
            mode, reason = marker or ("run", "")
        elif marker is not None and marker[0] == "sh":
            mode, reason = "sh", ""
        else:
            mode, reason = "unchecked", ""
        out.append(Block(path, start, lang, mode, reason, code))
        marker = None
        i = j + 1
    return out


ALL = [b for p in DOCS for b in blocks(p)]
RUN = [b for b in ALL if b.mode in ("run", "pair", "sh")]


def test_every_python_block_is_run_or_skipped_with_a_reason() -> None:
    py = [b for b in ALL if b.lang == "python"]
    assert py, "no python blocks found"
    for b in py:
        assert b.mode in ("run", "pair", "skip"), f"{b.id}: unknown marker {b.mode!r}"
        if b.mode == "skip":
            assert b.reason, f"{b.id}: a skipped snippet says why"
    for b in ALL:
        if b.mode == "sh":
            assert b.lang in ("sh", "bash", "console"), f"{b.id}: 'sh' marks a shell block"
    ran = sum(b.mode != "skip" for b in py)
    print(f"\n{len(py)} python blocks: {ran} run, {len(py) - ran} skipped; "
          f"{sum(b.mode == 'sh' for b in ALL)} shell blocks run")


def _key_of(d: Path) -> str:
    with peernet.Node(d, listen=None) as n:
        return n.key.hex()


def _spawn(b: Block, tmp: Path, role: str, peer: str, port: int) -> subprocess.Popen[str]:
    script = tmp / f"{role}.py"
    script.write_text(PRELUDE.read_text() + "\n" + b.code)
    env = {**os.environ, "SNIPPET_ROLE": role, "SNIPPET_PEER": peer, "SNIPPET_TMP": str(tmp),
           "SNIPPET_DISCOVERY_PORT": str(port),
           "SNIPPET_PEER_KEY": _key_of(tmp / peer / "0")}
    return subprocess.Popen([sys.executable, str(script)], cwd=tmp, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(p: subprocess.Popen[str], what: str) -> str:
    try:
        out, _ = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        pytest.fail(f"{what} did not finish in {TIMEOUT} s:\n{out}")
    assert p.returncode == 0, f"{what} exited {p.returncode}:\n{out}"
    return out


@pytest.mark.parametrize("b", RUN, ids=[b.id for b in RUN])
def test_snippet(b: Block, tmp_path: Path) -> None:
    if b.mode == "sh":
        env = {**os.environ, "PEERNET_DIR": str(tmp_path / "dir"), "HOME": str(tmp_path)}
        for cmd in b.code.splitlines():
            cmd = cmd.split(" #")[0].strip()
            if not cmd or cmd.startswith("#"):
                continue
            cmd = re.sub(r"^peernet\b", f"{sys.executable} -m peernet", cmd)
            r = subprocess.run(cmd, shell=True, cwd=tmp_path, env=env, text=True,
                               capture_output=True, timeout=TIMEOUT)
            assert r.returncode == 0, f"{b.id}: {cmd!r} exited {r.returncode}:\n{r.stdout}{r.stderr}"
        return
    port = free_udp_port()
    if b.mode == "run":
        out = _finish(_spawn(b, tmp_path, "solo", "absent", port), b.id)
        print(out)
        return
    procs = [_spawn(b, tmp_path, "alice", "bob", port), _spawn(b, tmp_path, "bob", "alice", port)]
    results: list[tuple[str, str]] = []
    try:
        for p, who in zip(procs, ("alice", "bob")):
            try:
                results.append((who, _finish(p, f"{b.id} as {who}")))
            except BaseException as e:  # both sides' output, not just the first failure
                results.append((who, f"FAILED: {e}"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    report = "\n".join(f"--- {who}:\n{out}" for who, out in results)
    assert not any(out.startswith("FAILED") for _, out in results), report
    print(report)
