"""Handler threads are shared fairly between peers."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import peernet
from conftest import NodeFactory, wait_until

A_CALLS = 1000


def test_one_peers_backlog_does_not_hold_up_another_peer(make_node: NodeFactory) -> None:
    server = make_node("server", handler_threads=2)
    a = make_node("a")
    c = make_node("c")
    for n in (a, c):
        n.trust(server.key)
        server.trust(n.key)
        assert server.address is not None
        n.connect(server.key, server.address)

    gate = threading.Event()
    lock = threading.Lock()
    done = {"a": 0}
    a_done_when_c_ran: list[int] = []

    def work(peer: peernet.Key, body: bytes) -> bytes:
        if peer == a.key:
            gate.wait(30)  # the first calls hold both threads until the backlog is queued
            time.sleep(0.002)
            with lock:
                done["a"] += 1
        else:
            with lock:
                a_done_when_c_ran.append(done["a"])
        return b"ok"

    server.expose("work", work)

    results: list[Any] = []

    async def flood() -> None:
        calls = [a.call_async(server.key, "work", b"", timeout=60) for _ in range(A_CALLS)]
        results.extend(await asyncio.gather(*calls, return_exceptions=True))

    flooder = threading.Thread(target=asyncio.run, args=(flood(),))
    flooder.start()
    try:
        # Two calls of A run (blocked on the gate), the rest wait for a thread.
        wait_until(lambda: server._h._handler_backlog() >= A_CALLS - 2, timeout=30,
                   what="A's calls queued on the server")
        c_reply: list[bytes] = []
        caller = threading.Thread(
            target=lambda: c_reply.append(c.call(server.key, "work", b"", timeout=60))
        )
        caller.start()
        wait_until(lambda: server._h._handler_backlog() >= A_CALLS - 1, timeout=30,
                   what="C's call queued on the server")
        gate.set()
        caller.join(60)
        assert c_reply == [b"ok"]
    finally:
        gate.set()
        flooder.join(90)
    assert results == [b"ok"] * A_CALLS
    # C's one call ran while A still had (almost) its whole backlog waiting.
    print(f"A's calls done when C's ran: {a_done_when_c_ran}")
    assert len(a_done_when_c_ran) == 1
    assert a_done_when_c_ran[0] < 100, a_done_when_c_ran
