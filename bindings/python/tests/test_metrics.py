"""Issue 19: Python reads the node's numbers (the same the Rust API and C read), the
OpenMetrics text parses with prometheus_client's parser, and Node.peer says why a peer
is not connected."""

from __future__ import annotations

import socket

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import peernet
from conftest import NodeFactory, wait_until


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):  # type: ignore[no-untyped-call]
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_ten_calls_are_ten_calls_out_and_in(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    b.expose("echo", lambda peer, body: body)
    for _ in range(10):
        assert a.call(b.key, "echo", b"ping") == b"ping"
    ma = a.metrics()
    assert isinstance(ma, peernet.NodeMetrics)
    assert (ma.calls_out, ma.calls_in, ma.handshakes_ok, ma.connections_open) == (10, 0, 1, 1)
    mb = b.metrics()
    assert mb.calls_in == 10 and mb.enabled
    echo = next(h for h in mb.handlers if h.name == "echo")
    assert echo.calls == 10 and echo.latency_buckets[-1] == 10
    assert [h.name for h in mb.handlers][-2:] == ["peernet.rpc", "unknown"]
    # The text parses as OpenMetrics and says the same.
    s = _samples(b.metrics_text())
    assert s[("peernet_calls_total", (("direction", "in"),))] == 10
    assert s[("peernet_handler_calls_total", (("handler", "echo"),))] == 10
    assert s[("peernet_handler_latency_seconds_count", (("handler", "echo"),))] == 10
    assert s[("peernet_handshakes_total", (("result", "ok"),))] == 1
    assert s[("peernet_connections_open", ())] == 1
    # Per peer, through the API.
    d = a.peer(b.key)
    assert d is not None and d.state == "connected"
    assert d.stats["calls_out"] == 10
    assert d.last_dial is not None and d.last_dial.error is None
    assert [x.source for x in d.addresses] == ["manual"]


def test_set_metrics_switches_counting_while_running(
    pair: tuple[peernet.Node, peernet.Node],
) -> None:
    a, b = pair
    b.expose("echo", lambda peer, body: body)
    a.call(b.key, "echo", b"x")
    a.set_metrics(False)
    a.call(b.key, "echo", b"x")
    m = a.metrics()
    assert (m.enabled, m.calls_out) == (False, 1)
    a.set_metrics(True)
    a.call(b.key, "echo", b"x")
    m = a.metrics()
    assert (m.enabled, m.calls_out) == (True, 2)
    assert b.metrics().calls_in == 3


def test_untrusted_dial_and_junk_discovery_parse_and_count(make_node: NodeFactory) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    disc = peernet.UdpDiscovery(port=port, interval=60.0, broadcast=[f"127.255.255.255:{port}"])
    b = make_node("b", discovery=disc)
    a = make_node("a")
    a.trust(b.key)
    assert b.address is not None
    with pytest.raises(peernet.UntrustedPeer):
        a.connect(b.key, b.address, timeout=5.0)
    wait_until(lambda: b.metrics().handshakes_untrusted == 1, what="b counts the refusal")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
        for i in range(50):
            junk.sendto(bytes([i]) * 10, ("127.0.0.1", port))

    def dropped() -> int:
        m = b.metrics()
        return m.discovery_dropped_malformed + m.discovery_dropped_rate_limited

    wait_until(lambda: dropped() >= 50, what="every junk datagram counted")
    s = _samples(b.metrics_text())
    assert s[("peernet_handshakes_total", (("result", "untrusted"),))] == 1
    total = sum(v for (n, _), v in s.items() if n == "peernet_discovery_dropped_total")
    assert total >= 50


def test_peer_says_why_it_is_not_connected(make_node: NodeFactory) -> None:
    a = make_node("a")
    ghost = make_node("ghost")
    key = ghost.key
    ghost.close()
    with socket.socket() as s:  # a port nothing listens on: bound, read back, closed
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    a.trust(key)
    a.discovered(key, dead)
    d = wait_until(
        lambda: (p := a.peer(key)) is not None and p.last_dial is not None and p.next_dial is not None and p,
        what="a failed dial and a next one scheduled",
    )
    assert d.state != "connected"
    assert d.last_dial.address == dead and d.last_dial.error and dead in d.last_dial.error
    assert d.next_dial > d.last_dial.at
    assert [(x.address, x.source) for x in d.addresses] == [(dead, "discovery")]
    assert a.peer(make_node("other").key) is None
