"""Streams (issue 16): open_stream / expose_stream, the file-like Stream, half-close,
reset codes and reasons, refusals, timeouts, and the asyncio form. Two nodes on
127.0.0.1 in this process; every wait has a deadline."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import queue
import random
import subprocess
import sys
import threading
import time
from typing import Any, Optional

import pytest

import peernet
from conftest import NodeFactory, wait_until

Pair = tuple[peernet.Node, peernet.Node]

#: The deadline of every wait in these tests (seconds).
WAIT = 20.0


def echo(s: peernet.Stream) -> None:
    """A stream function: every chunk back, until the end (then it returns: closed)."""
    s.timeout = WAIT
    for chunk in s:
        s.write(chunk)


def test_echo_peer_name_and_end(pair: Pair) -> None:
    a, b = pair
    seen: queue.Queue[tuple[peernet.Key, str, int]] = queue.Queue()

    @b.expose_stream("echo")
    def handler(s: peernet.Stream) -> None:
        seen.put((s.peer, s.name, s.id))
        echo(s)

    s = a.open_stream(b.key, "echo")
    assert isinstance(s, peernet.Stream) and s.peer == b.key and s.name == "echo"
    assert s.write(b"hello ") == 6
    s.write(bytearray(b"world"))
    s.close()
    assert s.closed and not s.writable()
    assert s.read(timeout=WAIT) == b"hello world"
    # Past the end: b"" every time, for every form of read.
    assert s.read(timeout=WAIT) == b""
    assert s.read(5, timeout=WAIT) == b""
    assert s.readinto(bytearray(4), timeout=WAIT) == 0
    assert list(s) == []
    peer, name, sid = seen.get(timeout=WAIT)
    assert peer == a.key and name == "echo" and sid == s.id
    with pytest.raises(ValueError, match="after close"):
        s.write(b"more")
    with pytest.raises(peernet.AlreadyExists):
        b.expose_stream("echo", echo)


def test_with_block_closes_and_readinto(pair: Pair) -> None:
    a, b = pair
    b.expose_stream("echo", echo)
    with a.open_stream(b.key, "echo") as s:
        s.write(b"abcdef")
    # Leaving the block closed our direction only: the answer can still be read.
    buf = bytearray(4)
    got = b""
    while len(got) < 6:
        n = s.readinto(buf, timeout=WAIT)
        assert n > 0
        got += bytes(buf[:n])
    assert got == b"abcdef" and s.read(timeout=WAIT) == b""


def test_five_mib_round_trip_with_hash(pair: Pair) -> None:
    """5 MiB out and back at the same time: one thread writes while this one reads (the
    echo is bounded by the 256 KiB windows, so neither side can write it all first)."""
    a, b = pair
    b.expose_stream("echo", echo)
    data = random.Random(16).randbytes(5 * 1024 * 1024)
    s = a.open_stream(b.key, "echo")
    s.timeout = WAIT
    errors: list[BaseException] = []

    def send() -> None:
        try:
            view = memoryview(data)
            for i in range(0, len(data), 1 << 20):
                s.write(view[i : i + (1 << 20)])
            s.close()
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    writer = threading.Thread(target=send, name="test-writer")
    writer.start()
    h = hashlib.sha256()
    received = 0
    deadline = time.monotonic() + 60
    for chunk in s:
        h.update(chunk)
        received += len(chunk)
        assert time.monotonic() < deadline, "the round trip took over 60 s"
    writer.join(WAIT)
    assert not writer.is_alive() and errors == []
    assert received == len(data)
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()


def test_half_close_opener_first(pair: Pair) -> None:
    a, b = pair

    @b.expose_stream("upper")
    def upper(s: peernet.Stream) -> None:
        request = s.read(timeout=WAIT)  # everything up to the opener's end
        assert s.read(timeout=WAIT) == b""
        s.write(b"reply:" + request.upper())

    s = a.open_stream(b.key, "upper")
    s.write(b"request")
    s.close()
    assert s.read(timeout=WAIT) == b"reply:REQUEST"
    assert s.read(timeout=WAIT) == b""


def test_half_close_handler_first(pair: Pair) -> None:
    a, b = pair
    got: queue.Queue[bytes] = queue.Queue()

    @b.expose_stream("greet")
    def greet(s: peernet.Stream) -> None:
        s.write(b"greeting")
        s.close()  # our direction ends here; the opener's is still open
        got.put(s.read(timeout=WAIT))

    s = a.open_stream(b.key, "greet")
    assert s.read(timeout=WAIT) == b"greeting"  # the end, while ours is open
    s.write(b"after your end")
    s.close()
    assert got.get(timeout=WAIT) == b"after your end"


def test_reset_by_the_opener_reaches_the_handler(pair: Pair) -> None:
    a, b = pair
    seen: queue.Queue[tuple[int, str, bytes]] = queue.Queue()
    first = threading.Event()

    @b.expose_stream("sink")
    def sink(s: peernet.Stream) -> None:
        part = s.read(7, timeout=WAIT)
        first.set()
        try:
            s.read(timeout=WAIT)
        except peernet.StreamReset as e:
            seen.put((e.code, e.reason, part))

    s = a.open_stream(b.key, "sink")
    s.write(b"partial")
    assert first.wait(WAIT)
    s.reset(42, "disk full")
    assert s.closed
    code, reason, part = seen.get(timeout=WAIT)
    assert (code, reason, part) == (42, "disk full", b"partial")


def test_reset_by_the_handler_reaches_the_opener(pair: Pair) -> None:
    a, b = pair
    b.expose_stream("quota", lambda s: s.reset(77, "quota exceeded"))

    def boom(s: peernet.Stream) -> None:
        raise ValueError("boom")

    b.expose_stream("boom", boom)
    s = a.open_stream(b.key, "quota")
    with pytest.raises(peernet.StreamReset) as e:
        s.read(timeout=WAIT)
    assert isinstance(e.value, peernet.PeerNetError)
    assert (e.value.code, e.value.reason) == (77, "quota exceeded")
    # A stream function that raises resets with code 0 and the exception as reason.
    s = a.open_stream(b.key, "boom")
    with pytest.raises(peernet.StreamReset) as e:
        s.read(timeout=WAIT)
    assert e.value.code == peernet.RESET_CANCELLED and e.value.reason == "ValueError: boom"


def test_with_block_that_raises_resets(pair: Pair) -> None:
    a, b = pair
    seen: queue.Queue[tuple[int, str]] = queue.Queue()
    first = threading.Event()

    @b.expose_stream("sink")
    def sink(s: peernet.Stream) -> None:
        s.read(4, timeout=WAIT)
        first.set()
        try:
            s.read(timeout=WAIT)
        except peernet.StreamReset as e:
            seen.put((e.code, e.reason))

    with pytest.raises(KeyError):
        with a.open_stream(b.key, "sink") as s:
            s.write(b"data")
            assert first.wait(WAIT)
            raise KeyError("k")
    # The block's failure must not look like a complete transfer to the peer.
    assert seen.get(timeout=WAIT) == (0, "KeyError in the with block")


def test_a_dropped_stream_is_reset_and_a_lost_connection_is_closed(pair: Pair) -> None:
    a, b = pair
    seen: queue.Queue[BaseException] = queue.Queue()
    first = threading.Event()

    @b.expose_stream("sink")
    def sink(s: peernet.Stream) -> None:
        s.read(4, timeout=WAIT)
        first.set()
        try:
            s.read(timeout=WAIT)
        except peernet.PeerNetError as e:
            seen.put(e)

    s = a.open_stream(b.key, "sink")
    s.write(b"data")
    assert first.wait(WAIT)
    del s  # never closed: the peer must not take it for a complete transfer
    gc.collect()
    e = seen.get(timeout=WAIT)
    assert isinstance(e, peernet.StreamReset) and e.code == peernet.RESET_CANCELLED
    # The connection ends while a stream is open: Closed on both ends.
    first.clear()
    s = a.open_stream(b.key, "sink")
    s.write(b"data")
    assert first.wait(WAIT)
    a.disconnect(b.key)
    assert isinstance(seen.get(timeout=WAIT), peernet.Closed)
    with pytest.raises(peernet.Closed):
        s.read(timeout=WAIT)


def test_stream_functions_do_not_hold_up_calls(make_node: NodeFactory) -> None:
    """A stream function runs as long as its peer keeps the stream open: on threads of
    its own, so a node with one handler thread still answers calls meanwhile."""
    a = make_node("a")
    b = make_node("b", handler_threads=1)
    a.trust(b.key)
    b.trust(a.key)
    assert b.address is not None
    a.connect(b.key, b.address, timeout=WAIT)
    b.wait_connected(a.key, timeout=WAIT)
    entered: queue.Queue[int] = queue.Queue()
    release = threading.Event()

    @b.expose_stream("hold")
    def hold(s: peernet.Stream) -> None:
        entered.put(s.id)
        release.wait(WAIT)

    b.expose("ping", lambda peer, body: b"pong")
    streams = [a.open_stream(b.key, "hold") for _ in range(2)]
    assert {entered.get(timeout=WAIT) for _ in streams} == {s.id for s in streams}
    try:
        assert a.call(b.key, "ping", timeout=5.0) == b"pong"
    finally:
        release.set()
    for s in streams:
        assert s.read(timeout=WAIT) == b""
    with pytest.raises(ValueError, match="threads"):
        b.expose_stream("none", echo, threads=0)


def _stream_threads() -> int:
    """Threads of this process named by the stream lanes (Linux: /proc)."""
    n = 0
    for t in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{t}/comm") as f:
                n += f.read().startswith("peernet-stream")
        except OSError:
            pass  # the thread ended meanwhile
    return n


def test_stream_threads_end_on_revoke_and_close(make_node: NodeFactory) -> None:
    # Earlier tests' stream threads end once their functions return.
    wait_until(lambda: _stream_threads() == 0, WAIT, "earlier tests' stream threads to end")
    base = 0
    n = make_node("n")
    n.expose_stream("one", echo, threads=3)
    n.expose_stream("two", echo, threads=2)
    # A thread names itself as it starts: wait for that too.
    wait_until(lambda: _stream_threads() == base + 5, WAIT, "five stream threads")
    n.revoke_stream("one")
    wait_until(lambda: _stream_threads() == base + 2, WAIT, "the revoked name's threads to end")
    n.close()
    wait_until(lambda: _stream_threads() == base, WAIT, "the stream threads to end")


def test_refused_names_raise_stream_reset_code_1(pair: Pair) -> None:
    a, b = pair
    asked: list[peernet.Key] = []

    def nobody(peer: peernet.Key) -> bool:
        asked.append(peer)
        return False

    b.expose_stream("private", echo, authorize=nobody)
    b.expose_stream("gone", echo)
    b.revoke_stream("gone")
    for name in ("missing", "private", "gone"):
        s = a.open_stream(b.key, name)
        with pytest.raises(peernet.StreamReset) as e:
            s.read(timeout=WAIT)
        assert e.value.code == peernet.RESET_REFUSED == 1, name
    assert asked == [a.key]
    with pytest.raises(peernet.UntrustedPeer):
        a.open_stream(b"\x09" * 32, "echo")


def test_read_timeout_loses_nothing(pair: Pair) -> None:
    a, b = pair
    go = threading.Event()

    @b.expose_stream("slow")
    def slow(s: peernet.Stream) -> None:
        s.write(b"part")
        if go.wait(WAIT):
            s.write(b"rest")

    s = a.open_stream(b.key, "slow")
    t0 = time.monotonic()
    with pytest.raises(peernet.Timeout, match="did not come within 0.3 s") as e:
        s.read(timeout=0.3)  # everything up to the end: only "part" comes
    assert time.monotonic() - t0 >= 0.3
    assert isinstance(e.value, TimeoutError)
    with pytest.raises(peernet.Timeout):
        s.read(-1, timeout=0.0)
    go.set()
    # "part", gathered by the reads that timed out, comes first.
    assert s.read(timeout=WAIT) == b"partrest"
    with pytest.raises(ValueError):
        s.read(1, timeout=-1)


def test_write_timeout_says_how_much_was_taken(pair: Pair) -> None:
    a, b = pair
    done = threading.Event()

    @b.expose_stream("stuck")
    def stuck(s: peernet.Stream) -> None:
        done.wait(WAIT)  # never reads: the window fills

    s = a.open_stream(b.key, "stuck")
    with pytest.raises(peernet.Timeout) as e:
        s.write(b"x" * (4 << 20), timeout=0.5)
    written: Optional[int] = getattr(e.value, "written", None)
    assert written is not None and 0 < written < 4 << 20
    done.set()


# A blocked read is interrupted by Ctrl-C. A thread of the child sends SIGINT once the
# main thread's frame is inside Stream.read (no sleep guessing); the default handler is
# restored first, as in test_runtime.py (an inherited ignored SIGINT installs none).
CTRL_C_SCRIPT = """
import os, signal, sys, tempfile, threading, time, peernet
signal.signal(signal.SIGINT, signal.default_int_handler)
d = tempfile.mkdtemp()
a = peernet.Node(d + "/a", listen="127.0.0.1:0")
b = peernet.Node(d + "/b", listen="127.0.0.1:0")
a.trust(b.key); b.trust(a.key)
a.connect(b.key, b.address)
release = threading.Event()
b.expose_stream("silent", lambda s: release.wait(60))
main = threading.main_thread().ident
def interrupt():
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        f = sys._current_frames().get(main)
        if f is not None and f.f_code.co_name == "read" and "_streams" in f.f_code.co_filename:
            os.kill(os.getpid(), signal.SIGINT)
            return
        time.sleep(0.001)
s = a.open_stream(b.key, "silent")
threading.Thread(target=interrupt, daemon=True).start()
t0 = time.monotonic()
try:
    s.read(1, timeout=60.0)
    print("returned")
except KeyboardInterrupt as e:
    tb = e.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    print("interrupted in %s after %.1f s" % (tb.tb_frame.f_code.co_name, time.monotonic() - t0))
release.set()
a.close(); b.close()
"""


def test_ctrl_c_interrupts_a_blocked_read() -> None:
    p = subprocess.run([sys.executable, "-c", CTRL_C_SCRIPT], capture_output=True, text=True, timeout=60)
    assert "interrupted in read after" in p.stdout, (p.stdout, p.stderr)
    assert p.returncode == 0, p.stderr


async def _echo_over(a: peernet.Node, key: peernet.Key, name: str) -> None:
    s = await a.open_stream_async(key, name)
    assert isinstance(s, peernet.AsyncStream) and s.peer == key and s.name == name
    s.write(b"ping ")
    s.write(b"pong")
    await asyncio.wait_for(s.drain(), WAIT)
    s.close()
    await asyncio.wait_for(s.wait_closed(), WAIT)
    assert await asyncio.wait_for(s.read(), WAIT) == b"ping pong"
    assert await asyncio.wait_for(s.read(), WAIT) == b"" and s.at_eof()


def test_asyncio_echo(pair: Pair) -> None:
    a, b = pair
    b.expose_stream("echo", echo)

    @b.expose_stream("aecho")
    async def aecho(s: peernet.AsyncStream) -> None:
        async for chunk in s:
            s.write(chunk)
            await s.drain()

    async def main() -> None:
        await _echo_over(a, b.key, "echo")  # a def stream function
        await _echo_over(a, b.key, "aecho")  # an async def one
        async with await a.open_stream_async(b.key, "aecho") as s:
            s.write(b"12345678")
            assert await asyncio.wait_for(s.readexactly(8), WAIT) == b"12345678"

    asyncio.run(asyncio.wait_for(main(), 60))


def test_asyncio_five_mib_round_trip_with_hash(pair: Pair) -> None:
    """The asyncio form both ways at once: a task writes (drain per chunk) while the
    main coroutine reads the echo of an async def stream function."""
    a, b = pair
    data = random.Random(17).randbytes(5 * 1024 * 1024)

    @b.expose_stream("aecho")
    async def aecho(s: peernet.AsyncStream) -> None:
        async for chunk in s:
            s.write(chunk)
            await s.drain()

    async def main() -> str:
        s = await a.open_stream_async(b.key, "aecho")

        async def send() -> None:
            for i in range(0, len(data), 256 * 1024):
                s.write(data[i : i + 256 * 1024])
                await s.drain()
            s.close()
            await s.wait_closed()

        writer = asyncio.ensure_future(send())
        h = hashlib.sha256()
        async for chunk in s:
            h.update(chunk)
        await writer
        return h.hexdigest()

    digest = asyncio.run(asyncio.wait_for(main(), 60))
    assert digest == hashlib.sha256(data).hexdigest()


def test_asyncio_cancelled_read_loses_nothing_and_reset(pair: Pair) -> None:
    a, b = pair
    go, got = threading.Event(), threading.Event()

    @b.expose_stream("later")
    def later(s: peernet.Stream) -> None:
        if go.wait(WAIT):
            s.write(b"late")
        got.wait(WAIT)  # a reset drops what is still buffered: "late" first
        s.reset(99, "done here")

    async def main() -> None:
        s = await a.open_stream_async(b.key, "later")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(s.read(100), 0.2)
        go.set()
        assert await asyncio.wait_for(s.readexactly(4), WAIT) == b"late"
        got.set()
        with pytest.raises(peernet.StreamReset) as e:
            await asyncio.wait_for(s.read(), WAIT)
        assert (e.value.code, e.value.reason) == (99, "done here")

    asyncio.run(asyncio.wait_for(main(), 60))
