"""`peernet status` and `peernet serve --status-every` (issue 19): the peers table,
from a running server and from a short-lived node on an idle data directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from test_cli import PEERNET, Proc, key_of, run


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    ps: list[Proc] = []
    yield ps
    for p in ps:
        p.stop()


def test_status_tables_from_serve_and_from_an_idle_directory(tmp_path: Path, procs: list[Proc]) -> None:
    client_dir = tmp_path / "client"
    client_key = key_of(client_dir)
    server_dir = str(tmp_path / "server")
    server = Proc([*PEERNET, "--dir", server_dir, "serve", "--listen", "127.0.0.1:0",
                   "--trust", client_key, "--duration", "60", "--status-every", "0.3"])
    procs.append(server)
    key = server.expect("key ").split()[1]
    addr = server.expect("listening ").split()[1]
    server.expect("no address known")  # the client: trusted, never seen
    # The call confirms (and remembers) the server's address in the client's trust file.
    r = run("--dir", str(client_dir), "call", key, "ping", "", "--addr", addr, "--trust")
    assert r.returncode == 0, r.stderr
    # The server's table counts the call.
    server.expect("calls in/out 1/0")
    # `status` on the client's (idle) directory dials the remembered address.
    r = run("--dir", str(client_dir), "status", "--wait", "1", "--watch", "0.2", "--count", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("PEER") == 2, r.stdout
    assert " connected " in r.stdout and addr in r.stdout, r.stdout
    # On the server's (held) directory it says where the table is.
    r = run("--dir", server_dir, "status")
    assert r.returncode == 1
    assert f"a node (pid {server.p.pid}) holds" in r.stderr and "--status-every" in r.stderr, r.stderr
    assert server.stop() == 0


def test_status_explains_an_unreachable_peer(tmp_path: Path) -> None:
    d = str(tmp_path / "lonely")
    assert run("--dir", d, "trust", "add", "ab" * 32, "--label", "far").returncode == 0
    r = run("--dir", d, "status", "--wait", "0")
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("far"))
    assert "disconnected" in row and "no address known" in row, r.stdout
