"""Exception messages say what happened and what to do (the handler, the key, who closed)."""

from __future__ import annotations

import threading

import pytest

import peernet
from conftest import NodeFactory


def test_messages_name_the_handler_the_key_and_the_closer(
    make_node: NodeFactory, pair: tuple[peernet.Node, peernet.Node]
) -> None:
    a, b = pair
    with pytest.raises(peernet.NoSuchHandler, match='"nothing"'):
        a.call(b.key, "nothing")
    stranger = make_node("stranger")
    with pytest.raises(peernet.UntrustedPeer) as ei:
        a.call(stranger.key, "echo")
    assert stranger.key.fingerprint in str(ei.value) and "trust it first" in str(ei.value)
    entered = threading.Event()
    release = threading.Event()

    def hold(_peer: peernet.Key, body: bytes) -> bytes:
        entered.set()
        release.wait(10)
        return body

    b.expose("hold", hold)
    got: list[BaseException] = []

    def caller() -> None:
        try:
            a.call(b.key, "hold", b"", timeout=20.0)
        except peernet.PeerNetError as e:
            got.append(e)

    t = threading.Thread(target=caller)
    t.start()
    assert entered.wait(10)
    a.untrust(b.key)
    t.join(10)
    release.set()
    assert len(got) == 1 and isinstance(got[0], peernet.Closed), got
    assert str(got[0]) == "this node revoked its trust in the peer (untrust)"
