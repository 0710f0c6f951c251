"""File transfer: `Node.send_file` / `Node.expose_files`, and `peernet send-file` with
`peernet serve --receive-dir` in two processes."""

from __future__ import annotations

import hashlib
import io
import os
import queue
import subprocess
import sys
from pathlib import Path

import pytest

import peernet
from peernet._cli_files import ProgressBar, human

PEERNET = [sys.executable, "-m", "peernet"]


def _bytes(n: int) -> bytes:
    return hashlib.shake_256(b"peernet files").digest(n)


def test_send_file_arrives_whole_with_progress(
    pair: tuple[peernet.Node, peernet.Node], tmp_path: Path
) -> None:
    a, b = pair
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    got: queue.Queue[peernet.ReceivedFile] = queue.Queue()
    b.expose_files(inbox, on_received=got.put)
    data = _bytes(700_001)
    src = tmp_path / "photo.jpg"
    src.write_bytes(data)
    seen: list[tuple[int, int]] = []
    r = a.send_file(b.key, src, progress=lambda done, total: seen.append((done, total)))
    assert r == peernet.SendReport(
        "photo.jpg", len(data), 0, len(data), False, hashlib.sha256(data).hexdigest()
    )
    assert (inbox / "photo.jpg").read_bytes() == data
    assert sorted(os.listdir(inbox)) == ["photo.jpg"]
    assert seen and seen[-1] == (len(data), len(data))
    f = got.get(timeout=10)
    assert (f.peer, f.name, f.size, f.resumed_from) == (a.key, "photo.jpg", len(data), 0)
    assert f.path == str(inbox / "photo.jpg")


def test_refusals(pair: tuple[peernet.Node, peernet.Node], tmp_path: Path) -> None:
    a, b = pair
    src = tmp_path / "x.bin"
    src.write_bytes(b"12345")
    with pytest.raises(peernet.NoSuchHandler):
        a.send_file(b.key, src)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    b.expose_files(inbox, max_size=4)
    with pytest.raises(peernet.AlreadyExists):
        b.expose_files(inbox)
    for bad in ["", "..", "../x", "a/b", ".hidden"]:
        with pytest.raises(ValueError):
            a.send_file(b.key, src, name=bad)
    with pytest.raises(peernet.HandlerFailed, match="limit of 4 bytes"):
        a.send_file(b.key, src)
    assert os.listdir(inbox) == []
    b.revoke_files()
    b.expose_files(inbox)
    (inbox / "x.bin").write_bytes(b"old")
    with pytest.raises(peernet.AlreadyExists):
        a.send_file(b.key, src)
    assert (inbox / "x.bin").read_bytes() == b"old"
    assert a.send_file(b.key, src, name="y.bin").sent == 5


def test_progress_bar_line() -> None:
    clock = iter([0.0, 2.0, 4.0])
    out = io.StringIO()
    bar = ProgressBar(out, now=lambda: next(clock))
    bar(1 << 20, 4 << 20)  # resumed at 1 MiB: the rate counts from here
    bar(2 << 20, 4 << 20)
    text = out.getvalue()
    assert "25.0%" in text and "1.0 MiB / 4.0 MiB" in text
    assert "512.0 KiB/s" in text and "ETA 0:04" in text
    bar.end()
    assert out.getvalue().endswith("\n")
    assert human(512) == "512 B" and human(1536) == "1.5 KiB"


def test_cli_send_file_to_serve(tmp_path: Path) -> None:
    client = tmp_path / "client"
    r = subprocess.run([*PEERNET, "--dir", str(client), "id"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    client_key = r.stdout.split()[1]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    server = subprocess.Popen(
        [*PEERNET, "--dir", str(tmp_path / "server"), "serve", "--listen", "127.0.0.1:0",
         "--trust", client_key, "--receive-dir", str(inbox), "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    )
    try:
        assert server.stdout is not None
        lines: list[str] = []
        for line in server.stdout:
            lines.append(line)
            if line.startswith("serving"):
                break
        key = next(x.split()[1] for x in lines if x.startswith("key "))
        addr = next(x.split()[1] for x in lines if x.startswith("listening "))
        assert any(x.startswith(f"receiving files into {inbox}") for x in lines), lines
        data = _bytes(300_000)
        src = tmp_path / "notes.txt"
        src.write_bytes(data)
        r = subprocess.run(
            [*PEERNET, "--dir", str(client), "send-file", key, str(src), "--addr", addr,
             "--trust"],
            capture_output=True, text=True, timeout=60,
        )
        assert r.returncode == 0, r.stderr
        # Not a terminal: no progress bar, one result line.
        assert "\r" not in r.stdout
        assert r.stdout.strip() == (
            f"sent notes.txt: 300000 bytes, 300000 sent; sha256 {hashlib.sha256(data).hexdigest()}"
        )
        assert (inbox / "notes.txt").read_bytes() == data
        for line in server.stdout:
            if line.startswith("received notes.txt"):
                assert "(300000 bytes)" in line
                break
        r = subprocess.run(
            [*PEERNET, "--dir", str(client), "send-file", key, str(src), "--addr", addr],
            capture_output=True, text=True, timeout=60,
        )
        assert r.returncode == 1 and "AlreadyExists" in r.stderr, r.stderr
    finally:
        server.terminate()
        server.communicate(timeout=15)
