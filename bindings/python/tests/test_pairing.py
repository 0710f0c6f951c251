"""Pairing from Python: by ticket and by short code (sync and async), typos, a wrong
code, the QR text. (SPAKE2 against the PyPI `spake2` package: peernet-proto's
tests/spake2_python.rs.)"""

from __future__ import annotations

import asyncio

import pytest

import peernet
from conftest import NodeFactory, free_udp_port


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
