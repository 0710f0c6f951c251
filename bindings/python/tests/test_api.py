"""The synchronous API: keys, trust, handlers, calls, sends, errors, peers, events."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import peernet
from conftest import NodeFactory, free_udp_port, wait_until

# ---- Key ----


def test_key_roundtrip_and_fingerprint() -> None:
    raw = bytes(range(32))
    k = peernet.Key(raw)
    assert k == raw and isinstance(k, bytes) and len(k) == 32
    assert peernet.Key.from_hex(k.hex()) == k
    assert peernet.Key.from_hex(k.hex().upper()) == k
    assert str(k) == k.hex()
    assert len(k.fingerprint) == 16 and int(k.fingerprint, 16) >= 0
    assert eval(repr(k), {"Key": peernet.Key}) == k
    assert {k: 1}[peernet.Key(raw)] == 1


@pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33])
def test_key_rejects_wrong_length(bad: bytes) -> None:
    with pytest.raises(ValueError):
        peernet.Key(bad)


def test_key_rejects_bad_hex_and_text() -> None:
    with pytest.raises(ValueError):
        peernet.Key.from_hex("zz" * 32)
    with pytest.raises(ValueError):
        peernet.Key.from_hex("ab")
    with pytest.raises(TypeError):
        peernet.Key("00" * 32)  # type: ignore[arg-type]


# ---- identity and trust ----


def test_identity_persists(tmp_path: Path) -> None:
    with peernet.Node(tmp_path / "n", listen="127.0.0.1:0") as n:
        k = n.key
        assert n.port > 0 and n.address == f"127.0.0.1:{n.port}"
    assert n.closed
    with peernet.Node(tmp_path / "n", listen=None) as n2:
        assert n2.key == k and n2.port == 0 and n2.address is None


def test_trust_untrust_trusted_persist(tmp_path: Path) -> None:
    other = peernet.Key(b"\x07" * 32)
    with peernet.Node(tmp_path / "n", listen=None) as n:
        assert n.trusted() == []
        n.trust(other, label="Bob's laptop")
        n.trust(other.hex())  # hex accepted, label kept
        [e] = n.trusted()
        assert e.key == other and e.label == "Bob's laptop" and not e.rpc and e.added_at > 0
        n.grant_rpc(other)
        assert n.trusted()[0].rpc
    with peernet.Node(tmp_path / "n", listen=None) as n:
        [e] = n.trusted()
        assert e.key == other and e.rpc
        assert n.untrust(other) is True
        assert n.untrust(other) is False
        assert n.trusted() == []


def test_trust_rejects_self_and_bad_label(make_node: NodeFactory) -> None:
    n = make_node()
    with pytest.raises(ValueError):
        n.trust(n.key)
    with pytest.raises(ValueError):
        n.trust(b"\x01" * 32, label="bad\nlabel")
    with pytest.raises(ValueError):
        n.trust(b"\x01" * 31)
    with pytest.raises(TypeError):
        n.trust(12)  # type: ignore[arg-type]


def test_corrupt_trust_file(tmp_path: Path) -> None:
    d = tmp_path / "n"
    with peernet.Node(d, listen=None):
        pass
    (d / "trusted_peers").write_text("this is not a trust file\n")
    with pytest.raises(peernet.CorruptFile):
        peernet.Node(d, listen=None)


# ---- handlers and calls ----


def test_call_decorator_and_plain_expose(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    seen: list[peernet.Key] = []

    @b.expose("greet")
    def greet(peer: peernet.Key, body: bytes) -> bytes:
        seen.append(peer)
        return b"hi " + body

    assert greet(a.key, b"x") == b"hi x"  # the decorator returns the function
    b.expose("empty", lambda peer, body: None)
    b.expose("ba", lambda peer, body: bytearray(b"ba"))
    assert a.call(b.key, "greet", b"world", timeout=5.0) == b"hi world"
    assert isinstance(seen[-1], peernet.Key) and seen[-1] == a.key
    assert a.call(b.key, "empty") == b""
    assert a.call(b.key, "ba", memoryview(b"")) == b"ba"
    big = os.urandom(200_000)
    b.expose("echo", lambda peer, body: body)
    assert a.call(b.key, "echo", big) == big


def test_handler_exception_is_handler_failed_and_node_keeps_serving(
    pair: tuple[peernet.Node, peernet.Node],
) -> None:
    a, b = pair

    @b.expose("boom")
    def boom(peer: peernet.Key, body: bytes) -> bytes:
        raise ValueError("bad input: " + body.decode())

    b.expose("wrong", lambda peer, body: 42)
    b.expose("ok", lambda peer, body: b"ok")
    for _ in range(3):
        with pytest.raises(peernet.HandlerFailed) as ei:
            a.call(b.key, "boom", b"xyz")
        assert "ValueError" in str(ei.value) and "bad input: xyz" in str(ei.value)
        assert "Traceback" not in str(ei.value)
        assert a.call(b.key, "ok") == b"ok"
    with pytest.raises(peernet.HandlerFailed, match="expected bytes"):
        a.call(b.key, "wrong")


def test_default_deny_errors(make_node: NodeFactory, pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    with pytest.raises(peernet.NoSuchHandler):
        a.call(b.key, "nothing")
    stranger = make_node("stranger")
    assert b.address is not None
    # Not trusted here: refused before dialling.
    with pytest.raises(peernet.UntrustedPeer):
        stranger.connect(b.key, b.address, timeout=5.0)
    # Trusted here but not there: the handshake is refused by b.
    stranger.trust(b.key)
    with pytest.raises((peernet.UntrustedPeer, peernet.HandshakeFailed, peernet.Closed)):
        stranger.connect(b.key, b.address, timeout=5.0)
    with pytest.raises(peernet.NotConnected):
        stranger.call(b.key, "anything")
    with pytest.raises(peernet.NotConnected):
        stranger.send(b.key, "anything", b"")


def test_authorize(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    admins: set[peernet.Key] = set()

    @b.expose("admin", authorize=lambda peer: peer in admins)
    def admin(peer: peernet.Key, body: bytes) -> bytes:
        return b"welcome"

    def raising(peer: peernet.Key) -> bool:
        raise RuntimeError("predicate bug")

    b.expose("raising", lambda p, body: b"", authorize=raising)
    with pytest.raises(peernet.Forbidden):
        a.call(b.key, "admin")
    admins.add(a.key)
    assert a.call(b.key, "admin") == b"welcome"
    with pytest.raises(peernet.Forbidden):
        a.call(b.key, "raising")
    assert a.is_connected(b.key)


def test_send_is_delivered(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    got: list[tuple[peernet.Key, bytes]] = []
    arrived = threading.Event()

    @b.expose("chat")
    def chat(peer: peernet.Key, body: bytes) -> None:
        got.append((peer, body))
        if len(got) == 3:
            arrived.set()

    for i in range(3):
        a.send(b.key, "chat", b"msg%d" % i)
    assert arrived.wait(10)
    assert sorted(body for _, body in got) == [b"msg0", b"msg1", b"msg2"]
    assert all(p == a.key for p, _ in got)


def test_revoke_and_duplicate(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    b.expose("x", lambda p, body: b"1")
    with pytest.raises(peernet.AlreadyExists):
        b.expose("x", lambda p, body: b"2")
    with pytest.raises(ValueError):
        b.expose("x", lambda p, body: b"2")  # AlreadyExists is a ValueError
    assert a.call(b.key, "x") == b"1"
    b.revoke("x")
    with pytest.raises(peernet.NoSuchHandler):
        a.call(b.key, "x")
    with pytest.raises(ValueError):
        b.revoke("x")
    with pytest.raises(ValueError):
        b.expose("peernet.rpc", lambda p, body: b"")
    with pytest.raises(ValueError):
        b.expose("", lambda p, body: b"")
    with pytest.raises(TypeError):
        b.expose("y", 5)  # type: ignore[call-overload]


def test_timeout_and_bad_arguments(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    release = threading.Event()

    @b.expose("slow")
    def slow(peer: peernet.Key, body: bytes) -> bytes:
        release.wait(10)
        return b"late"

    try:
        with pytest.raises(peernet.Timeout) as ei:
            a.call(b.key, "slow", timeout=0.2)
        assert isinstance(ei.value, TimeoutError)
    finally:
        release.set()
    with pytest.raises(ValueError):
        a.call(b.key, "slow", timeout=-1)
    with pytest.raises(TypeError):
        a.call(b.key, "slow", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        a.call(b.key, "slow", timeout="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        a.connect(b.key, "not an address")


def test_payload_too_large(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    b.expose("echo", lambda p, body: body)
    with pytest.raises(peernet.PayloadTooLarge):
        a.call(b.key, "echo", b"x" * (2 << 20))
    assert a.call(b.key, "echo", b"still up") == b"still up"


def test_closed_node(make_node: NodeFactory, pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    a.close()
    a.close()  # idempotent
    with pytest.raises(peernet.Closed):
        a.call(b.key, "x")
    with pytest.raises(peernet.Closed):
        a.trust(b"\x05" * 32)
    wait_until(lambda: not b.is_connected(a.key), what="b to notice a closed")


def test_untrust_drops_connection(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    assert b.untrust(a.key)
    wait_until(lambda: not a.is_connected(b.key), what="a to be disconnected")
    with pytest.raises(peernet.NotConnected):
        a.call(b.key, "x")


def test_peers_and_disconnect(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    [p] = a.peers()
    assert p.key == b.key and p.state == "connected" and p.trusted and p.label == "b"
    assert p.address == b.address and p.last_seen is not None
    a.disconnect(b.key)
    assert not a.is_connected(b.key)
    with pytest.raises(peernet.NotConnected):
        a.disconnect(b.key)


def test_wait_connected_timeout(make_node: NodeFactory) -> None:
    a = make_node()
    with pytest.raises(peernet.Timeout):
        a.wait_connected(b"\x03" * 32, timeout=0.1)


# ---- events ----


def test_on_event_and_events_iterator(make_node: NodeFactory) -> None:
    a = make_node("a")
    b = make_node("b")
    a.trust(b.key)
    b.trust(a.key)
    seen: list[peernet.Event] = []
    got_connected = threading.Event()

    @a.on_event
    def cb(ev: peernet.Event) -> None:
        seen.append(ev)
        if ev.kind == "connected":
            got_connected.set()

    it = b.events(timeout=5.0)
    assert b.address is not None
    a.connect(b.key, b.address)
    assert got_connected.wait(5)
    ev = next(it)
    assert ev.kind == "connected" and ev.key == a.key
    it.close()
    assert any(e.kind == "connected" and e.key == b.key for e in seen)
    assert all(e.close_reason is None for e in seen if e.kind == "connected")
    later = a.events(timeout=5.0)
    b.close()
    gone = next(e for e in later if e.kind == "disconnected" and e.key == b.key)
    # b said Goodbye (closing) as it shut down: the typed reason says so.
    assert gone.close_reason == "peer_goodbye", gone


def test_event_callback_exception_is_logged(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    a = make_node("a")
    b = make_node("b")
    a.trust(b.key)
    b.trust(a.key)

    def bad(ev: peernet.Event) -> None:
        raise RuntimeError("callback bug")

    a.on_event(bad)
    assert b.address is not None
    with caplog.at_level("ERROR", logger="peernet"):
        a.connect(b.key, b.address)
        wait_until(lambda: any("event callback raised" in r.message for r in caplog.records))
    assert a.is_connected(b.key)  # a raising callback breaks nothing


def test_manual_discovery_auto_connects(make_node: NodeFactory) -> None:
    a = make_node("a")
    b = make_node("b")
    a.trust(b.key)
    b.trust(a.key)
    assert b.address is not None
    a.discovered(b.key, b.address)
    a.wait_connected(b.key, timeout=10.0)
    a.lost(b.key)
    assert a.is_connected(b.key)


def test_wait_event(make_node: NodeFactory) -> None:
    a = make_node("a")
    b = make_node("b")
    a.trust(b.key)
    b.trust(a.key)
    assert b.address is not None
    addr = b.address
    t = threading.Timer(0.2, lambda: a.connect(b.key, addr))
    t.start()
    try:
        ev = b.wait_event(lambda e: e.kind == "connected", timeout=10.0)
    finally:
        t.join()
    assert ev.key == a.key
    with pytest.raises(peernet.Timeout):
        b.wait_event(lambda e: e.kind == "lost", timeout=0.1)


def test_udp_discovery_on_loopback(make_node: NodeFactory) -> None:
    disc = peernet.UdpDiscovery(port=free_udp_port(), interval=0.2, broadcast=["127.255.255.255"])
    a = make_node("a", discovery=disc)
    events = a.events(timeout=10.0)
    b = make_node("b", discovery=disc)
    a.trust(b.key)
    b.trust(a.key)
    a.wait_connected(b.key, timeout=10.0)
    kinds = set()
    for ev in events:
        if ev.key == b.key:
            kinds.add(ev.kind)
        if {"discovered", "connected"} <= kinds:
            break
    events.close()
    assert {"discovered", "connected"} <= kinds


def test_bad_node_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        peernet.Node(tmp_path / "x", listen="nowhere")
    with pytest.raises(ValueError):
        peernet.Node(tmp_path / "x", max_frame=10)
    with pytest.raises(ValueError):
        peernet.Node(tmp_path / "x", handler_threads=0)
    with pytest.raises(TypeError):
        peernet.Node(tmp_path / "x", discovery=4040)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        peernet.Node(tmp_path / "x", heartbeat=(-1.0, 2.0))


def test_verification_words_match_on_both_ends(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    wa = a.verification_words(b.key)
    assert wa is not None and len(wa.split()) == 5, wa
    assert wa == b.verification_words(a.key)
    a.disconnect(b.key)
    assert a.verification_words(b.key) is None
