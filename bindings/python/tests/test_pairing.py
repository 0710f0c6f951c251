"""Pairing from Python: by ticket and by short code (sync and async), typos, a wrong
code, the QR text. (SPAKE2 against the PyPI `spake2` package: peernet-proto's
tests/spake2_python.rs.)"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

import peernet
from conftest import NodeFactory, free_udp_port
from test_cli import PEERNET, Proc, procs  # noqa: F401 (the fixture)


def _check(a: peernet.Node, b: peernet.Node, pa: peernet.Paired, pb: peernet.Paired) -> None:
    assert pa.key == b.key and pb.key == a.key
    assert pa.name == "bob" and pb.name == "alice"
    assert pa.sas == pb.sas and len(pa.sas.split()) == 5
    labels = {e.key: e.label for e in a.trusted()}
    assert labels[b.key] == "bob"
    b.expose("echo", lambda peer, body: body)
    a.wait_connected(b.key, timeout=10.0)
    assert a.call(b.key, "echo", b"hi", timeout=5.0) == b"hi"


def test_pair_by_ticket_then_call(make_node: NodeFactory) -> None:
    a = make_node("a")
    b = make_node("b")
    assert a.trusted() == [] and b.trusted() == []
    with a.invite(name="alice", code=False) as inv:
        assert inv.code is None and inv.ticket.startswith("peernet1-")
        pb = b.join(inv.ticket, name="bob", timeout=10.0)
        pa = inv.wait(timeout=10.0)
        assert not inv.is_open
    _check(a, b, pa, pb)


def test_pair_by_code_async(make_node: NodeFactory) -> None:
    port = free_udp_port()
    disc = peernet.UdpDiscovery(port=port, interval=0.5, broadcast=[f"127.255.255.255:{port}"])
    a = make_node("a", discovery=disc)
    b = make_node("b", discovery=disc)

    async def main() -> tuple[peernet.Paired, peernet.Paired]:
        inv = await a.invite_async(name="alice")
        assert inv.code is not None
        pb = await b.join_async(inv.code, name="bob", timeout=10.0)
        pa = await inv.wait_async(timeout=10.0)
        inv.close()
        return pa, pb

    pa, pb = asyncio.run(main())
    _check(a, b, pa, pb)


def test_typos_and_a_wrong_code(make_node: NodeFactory) -> None:
    port = free_udp_port()
    disc = peernet.UdpDiscovery(port=port, interval=0.5, broadcast=[f"127.255.255.255:{port}"])
    a = make_node("a", discovery=disc)
    m = make_node("m", discovery=disc)
    inv = a.invite(name="alice")
    t = inv.ticket
    i = len("peernet1-") + 2
    bad = t[:i] + ("B" if t[i] == "A" else "A") + t[i + 1 :]
    with pytest.raises(ValueError, match="group 1"):
        m.join(bad)
    with pytest.raises(ValueError, match="word 2"):
        m.join("7-copper-violn")
    assert inv.code is not None
    number = inv.code.split("-")[0]
    guess = f"{number}-acid-acorn" if not inv.code.endswith("-acid-acorn") else f"{number}-acid-acid"
    with pytest.raises(peernet.HandshakeFailed):
        m.join(guess, timeout=10.0)
    assert a.trusted() == [] and m.trusted() == []
    inv.close()
    with pytest.raises(ValueError, match="closed"):
        inv.wait(1.0)


def test_qr_is_terminal_text(make_node: NodeFactory) -> None:
    a = make_node("a")
    with a.invite(code=False) as inv:
        q = inv.qr()
        lines = q.splitlines()
        assert len(lines) > 20
        assert len(set(len(line) for line in lines)) == 1, "a rectangle"
        assert set(q) <= set("█▀▄ \n")
        assert inv.qr(invert=True) != q


def test_cli_invite_and_join_in_two_processes(tmp_path: Path, procs: list[Proc]) -> None:
    """`peernet invite` shows a code, ticket and QR and waits; `peernet join CODE` in
    another process pairs; both print the same verification words."""
    port = str(free_udp_port())
    common = ["--listen", "127.0.0.1:0", "--discovery-port", port, "--broadcast", "127.255.255.255"]
    inviter = Proc([*PEERNET, "--dir", str(tmp_path / "a"), "invite", "--name", "alice",
                    "--expiry", "60", *common])
    procs.append(inviter)
    code = inviter.expect("code:").split()[1]
    inviter.expect("waiting up to")
    j = subprocess.run(
        [*PEERNET, "--dir", str(tmp_path / "b"), "join", code, "--name", "bob", *common],
        capture_output=True, text=True, timeout=60,
    )
    assert j.returncode == 0, j.stderr
    words = [ln for ln in j.stdout.splitlines() if ln.startswith("verification words:")]
    assert "joined alice" in j.stdout
    assert inviter.expect("paired with bob")
    assert inviter.expect("verification words:") == words[0]
    assert inviter.p.wait(timeout=10) == 0
    bad = subprocess.run(
        [*PEERNET, "--dir", str(tmp_path / "b"), "join", "peernet1-AAAA"],
        capture_output=True, text=True, timeout=30,
    )
    assert bad.returncode == 1 and "ticket" in bad.stderr


def test_chat_pairs_by_invite_and_join(tmp_path: Path, procs: list[Proc]) -> None:
    """`/invite` in one `peernet chat`, `/join CODE` in another: both trust each other
    and the message goes through; no fingerprint is typed."""
    port = str(free_udp_port())
    chat = ["chat", "--port", port, "--broadcast", "127.255.255.255", "--interval", "0.3"]
    a = Proc([*PEERNET, "--dir", str(tmp_path / "a"), *chat, "--name", "alice"])
    b = Proc([*PEERNET, "--dir", str(tmp_path / "b"), *chat, "--name", "bob"])
    procs.extend([a, b])
    a.expect("you are alice")
    b.expect("you are bob")
    a.write("/invite")
    line = a.expect("the other side types /join")
    code = line.split("/join ")[1]
    b.write(f"/join {code}")
    assert "verification words" in b.expect("* paired with alice")
    assert "verification words" in a.expect("* paired with bob")
    b.expect("* connected to")
    a.expect("* connected to")
    b.write("hello alice")
    a.expect("bob: hello alice")
