"""asyncio: call_async with many calls in flight, async def handlers, rpc_call_async."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import peernet


def test_thousand_concurrent_calls(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    b.expose("echo", lambda peer, body: body)

    async def main() -> list[bytes]:
        return await asyncio.gather(
            *(a.call_async(b.key, "echo", b"%d" % i, timeout=30.0) for i in range(1000))
        )

    replies = asyncio.run(main())
    assert replies == [b"%d" % i for i in range(1000)]


def test_call_async_errors(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair

    def boom(peer: peernet.Key, body: bytes) -> bytes:
        raise KeyError("k")

    b.expose("boom", boom)

    async def main() -> None:
        with pytest.raises(peernet.NoSuchHandler):
            await a.call_async(b.key, "missing")
        with pytest.raises(peernet.HandlerFailed, match="KeyError"):
            await a.call_async(b.key, "boom")
        # A key not trusted here (issue 20): UntrustedPeer, not NotConnected.
        with pytest.raises(peernet.UntrustedPeer, match="trust it first"):
            await a.call_async(b"\x09" * 32, "x")
        with pytest.raises(ValueError):
            await a.call_async(b.key, "x", timeout=-2)

    asyncio.run(main())


def test_call_async_does_not_block_the_loop(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    release = threading.Event()

    @b.expose("wait")
    def wait(peer: peernet.Key, body: bytes) -> bytes:
        release.wait(10)
        return b"done"

    async def main() -> bytes:
        task = asyncio.ensure_future(a.call_async(b.key, "wait", timeout=10.0))
        ticks = 0
        while ticks < 20:  # the loop keeps running while the call is in flight
            await asyncio.sleep(0.001)
            ticks += 1
        assert not task.done()
        release.set()
        return await task

    assert asyncio.run(main()) == b"done"


def test_cancelled_call_async_is_harmless(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    release = threading.Event()
    b.expose("wait", lambda peer, body: b"x" if release.wait(10) else b"")
    b.expose("echo", lambda peer, body: body)

    async def main() -> bytes:
        t = asyncio.ensure_future(a.call_async(b.key, "wait"))
        await asyncio.sleep(0.05)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        release.set()
        return await a.call_async(b.key, "echo", b"after")

    assert asyncio.run(main()) == b"after"


def test_async_def_handlers(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair

    @b.expose("sleepy")
    async def sleepy(peer: peernet.Key, body: bytes) -> bytes:
        await asyncio.sleep(0.2)
        return body.upper()

    @b.expose("async_boom")
    async def async_boom(peer: peernet.Key, body: bytes) -> bytes:
        await asyncio.sleep(0)
        raise RuntimeError("async failure")

    # More sleeping async handlers in flight than handler threads: they are awaited on a
    # loop, not run on threads, so 50 * 0.2 s take about 0.2 s, not 50 * 0.2 / 4.
    async def main() -> list[bytes]:
        return await asyncio.gather(
            *(a.call_async(b.key, "sleepy", b"x%d" % i, timeout=20.0) for i in range(50))
        )

    assert asyncio.run(main()) == [b"X%d" % i for i in range(50)]
    with pytest.raises(peernet.HandlerFailed, match="RuntimeError: async failure"):
        a.call(b.key, "async_boom")


def test_rpc_call_async(pair: tuple[peernet.Node, peernet.Node]) -> None:
    a, b = pair
    b.grant_rpc(a.key)

    async def main() -> object:
        return await a.rpc_call_async(b.key, "math", "hypot", [3, 4])

    assert asyncio.run(main()) == 5.0


def test_calls_from_two_loops_at_once_and_loops_are_not_kept(
    pair: tuple[peernet.Node, peernet.Node],
) -> None:
    """Completions are batched per event loop: two loops in two threads each get exactly
    their own replies, and a finished loop is not kept alive by the batching."""
    import gc
    import weakref

    from peernet import _aio

    a, b = pair
    b.expose("echo", lambda peer, body: body)
    results: dict[int, list[bytes]] = {}
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    def run(t: int) -> None:
        async def main() -> list[bytes]:
            loops.append(weakref.ref(asyncio.get_running_loop()))
            return await asyncio.gather(
                *(a.call_async(b.key, "echo", b"%d-%d" % (t, i), timeout=30.0) for i in range(300))
            )

        results[t] = asyncio.run(main())

    threads = [threading.Thread(target=run, args=(t,)) for t in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    for t in range(2):
        assert results[t] == [b"%d-%d" % (t, i) for i in range(300)]
    gc.collect()
    assert len(loops) == 2
    assert all(r() is None for r in loops)
    assert len(_aio._inboxes) == 0


def test_async_with_connect_wait_send_and_aevents(tmp_path: Path) -> None:
    """The whole asyncio surface on one loop: nothing here blocks the loop (a ticker
    task keeps running throughout) and nothing polls it."""

    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        tick = asyncio.ensure_future(ticker())
        async with peernet.Node(tmp_path / "a", listen="127.0.0.1:0") as a, peernet.Node(
            tmp_path / "b", listen="127.0.0.1:0"
        ) as b:
            a.trust(b.key)
            b.trust(a.key)
            got: asyncio.Queue[bytes] = asyncio.Queue()
            loop = asyncio.get_running_loop()

            @b.expose("inbox")
            def inbox(peer: peernet.Key, body: bytes) -> None:
                loop.call_soon_threadsafe(got.put_nowait, body)

            async def first_connected() -> peernet.Event:
                async for ev in b.aevents(timeout=10):
                    if ev.kind == "connected" and ev.key == a.key:
                        return ev
                raise AssertionError("no connected event")

            watch = asyncio.ensure_future(first_connected())
            await asyncio.sleep(0)  # the iterator is registered before the connection
            assert b.address is not None
            await a.connect_async(b.key, b.address, timeout=5.0)
            await b.wait_connected_async(a.key, timeout=5.0)
            ev = await asyncio.wait_for(watch, 10)
            assert ev.key == a.key
            await a.send_async(b.key, "inbox", b"hello")
            assert await asyncio.wait_for(got.get(), 10) == b"hello"
            with pytest.raises(peernet.Timeout):
                await a.wait_connected_async(b"\x07" * 32, timeout=0.1)
            with pytest.raises(peernet.UntrustedPeer, match="trust it first"):
                await a.send_async(b"\x07" * 32, "inbox", b"x")  # never trusted: says so
            a.trust(b"\x07" * 32)
            with pytest.raises(peernet.NotConnected):
                await a.send_async(b"\x07" * 32, "inbox", b"x")
            with pytest.raises(peernet.UntrustedPeer):
                await a.connect_async(b"\x07" * 32, b.address, timeout=1.0)
        assert a.closed and b.closed
        before = ticks
        await asyncio.sleep(0.05)
        assert ticks > before
        tick.cancel()

    asyncio.run(main())


def test_aevents_timeout_and_close_end_the_iteration(tmp_path: Path) -> None:
    async def main() -> None:
        n = peernet.Node(tmp_path / "n", listen=None)
        seen = [ev async for ev in n.aevents(timeout=0.2)]
        assert seen == []

        async def drain() -> int:
            return len([ev async for ev in n.aevents()])

        t = asyncio.ensure_future(drain())
        await asyncio.sleep(0.05)
        await n.aclose()
        assert await asyncio.wait_for(t, 5) == 0

    asyncio.run(main())
