"""asyncio for streams: :class:`AsyncStream` (``await node.open_stream_async(key, name)``,
and what an ``async def`` stream handler gets), in the manner of asyncio's
``StreamReader``/``StreamWriter``.

It is built on threads: each stream has one reader and one writer thread (started on
first use, daemon threads) that call the blocking :class:`peernet.Stream` methods (GIL
released while they wait) and hand each result to the loop with
``loop.call_soon_threadsafe``. The loop is never blocked. A cancelled ``read()``
(``asyncio.wait_for``) loses nothing: what its thread then reads is kept for the next.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any, Callable, Optional, Union

from ._streams import CHUNK, RESET_CANCELLED, Stream, _describe, _log
from ._types import Key, KeyLike, _body

__all__ = ["AsyncStream"]

#: Most bytes one read of the reader thread asks for.
_READ = 256 * 1024


class _Worker:
    """One daemon thread running jobs in order; stopped by ``stop()`` or when its owner
    is collected."""

    def __init__(self, name: str) -> None:
        self._jobs: collections.deque[Optional[Callable[[], None]]] = collections.deque()
        self._ready = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._name = name

    def submit(self, job: Optional[Callable[[], None]]) -> None:
        with self._ready:
            if self._thread is None:
                if job is None:
                    return
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._jobs.append(job)
            self._ready.notify()

    def stop(self) -> None:
        self.submit(None)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._jobs:
                    self._ready.wait()
                job = self._jobs.popleft()
            if job is None:
                return
            job()


class AsyncStream:
    """A :class:`peernet.Stream` for asyncio.

    ``await read(n=-1)`` (``b""`` at the end), ``await readexactly(n)``,
    ``async for chunk in stream``; ``write(data)`` queues data and ``await drain()`` waits
    until the stream took everything queued (it raises a write's error, such as
    :class:`StreamReset`); ``close()`` finishes our direction after the queued data and
    ``await wait_closed()`` waits for that; ``reset(code, reason)`` aborts both ways at
    once. ``async with`` closes (or, if the block raised, resets) and waits.
    """

    def __init__(self, stream: Stream, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self._s = stream
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        fp = stream.peer.fingerprint[:8]
        self._reader = _Worker(f"peernet-stream-r-{fp}")
        self._writer = _Worker(f"peernet-stream-w-{fp}")
        # The threads end when the stream object is collected.
        weakref.finalize(self, self._reader.stop)
        weakref.finalize(self, self._writer.stop)
        # Reading: bytes from the reader thread not consumed yet; one read in flight.
        self._buf = bytearray()
        self._eof = False
        self._rexc: Optional[BaseException] = None
        self._reading = False
        self._waiter: Optional[asyncio.Future[None]] = None
        # Writing: bytes queued and not taken yet, the first error, drain()'s waiters.
        self._unwritten = 0
        self._wexc: Optional[BaseException] = None
        self._drains: list[asyncio.Future[None]] = []
        self._closing = False
        self._closed: Optional[asyncio.Future[None]] = None

    @property
    def stream(self) -> Stream:
        """The blocking stream underneath."""
        return self._s

    @property
    def peer(self) -> Key:
        """The peer's key."""
        return self._s.peer

    @property
    def name(self) -> str:
        """The stream handler name it was opened to."""
        return self._s.name

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        # On a worker thread.
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass  # the loop is closed: nobody waits for this any more

    # ---- reading ----

    def _read_job(self) -> None:  # on the reader thread
        try:
            data, exc = self._s.read(_READ), None
        except BaseException as e:
            data, exc = b"", e
        self._to_loop(self._fed, data, exc)

    def _fed(self, data: bytes, exc: Optional[BaseException]) -> None:  # on the loop
        self._reading = False
        if exc is not None:
            self._rexc = exc
        elif data:
            self._buf += data
        else:
            self._eof = True
        if not data:
            self._reader.stop()  # the end or an error: nothing more to read
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def _fill(self) -> None:
        """Waits for one more result of the reader thread (data, the end or an error)."""
        if self._rexc is not None:
            raise self._rexc
        if self._waiter is not None:
            raise RuntimeError("read() called while another coroutine is already reading this stream")
        if not self._reading:
            self._reading = True
            self._reader.submit(self._read_job)
        w = self._loop.create_future()
        self._waiter = w
        try:
            await w
        finally:
            self._waiter = None
        if self._rexc is not None and not self._buf:
            raise self._rexc

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes as soon as some arrived (``n < 0``: everything up to the
        end); ``b""`` at the end."""
        if n < 0:
            while not self._eof:
                await self._fill()
            out = bytes(self._buf)
            self._buf.clear()
            return out
        if n == 0:
            return b""
        while not self._buf and not self._eof:
            await self._fill()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; ``asyncio.IncompleteReadError`` if the stream ends first."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        while len(self._buf) < n and not self._eof:
            await self._fill()
        if len(self._buf) < n:
            partial = bytes(self._buf)
            self._buf.clear()
            raise asyncio.IncompleteReadError(partial, n)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def at_eof(self) -> bool:
        """Whether the end was read and nothing is left in the buffer."""
        return self._eof and not self._buf

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self.read(CHUNK)
            if not chunk:
                return
            yield chunk

    # ---- writing ----

    def _write_job(self, data: bytes) -> None:  # on the writer thread
        try:
            self._s.write(data)
            exc: Optional[BaseException] = None
        except BaseException as e:
            exc = e
        self._to_loop(self._wrote, len(data), exc)

    def _wrote(self, n: int, exc: Optional[BaseException]) -> None:  # on the loop
        self._unwritten -= n
        if exc is not None and self._wexc is None:
            self._wexc = exc
        if self._unwritten == 0 or self._wexc is not None:
            drains, self._drains = self._drains, []
            for w in drains:
                if not w.done():
                    w.set_result(None)

    def write(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Queues ``data`` for the stream (never waits; follow with :meth:`drain`)."""
        b = _body(data)
        if self._wexc is not None:
            raise self._wexc
        if self._closing or self._s.closed:
            raise ValueError(f"write to stream {self.name!r} after close() or reset()")
        if not b:
            return
        self._unwritten += len(b)
        self._writer.submit(lambda: self._write_job(b))

    async def drain(self) -> None:
        """Waits until the stream took everything written so far; raises the first
        write error (:class:`StreamReset`, :class:`Closed`)."""
        while self._unwritten > 0 and self._wexc is None:
            w = self._loop.create_future()
            self._drains.append(w)
            await w
        if self._wexc is not None:
            raise self._wexc

    def is_closing(self) -> bool:
        """Whether :meth:`close` or :meth:`reset` was called."""
        return self._closing or self._s.closed

    def _close_job(self) -> None:  # on the writer thread, after the queued writes
        try:
            self._s.close()
            exc: Optional[BaseException] = None
        except BaseException as e:
            exc = e
        self._to_loop(self._closed_done, exc)

    def _closed_done(self, exc: Optional[BaseException]) -> None:  # on the loop
        if exc is not None and self._wexc is None:
            self._wexc = exc
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def close(self) -> None:
        """Finishes our direction once the queued data is written (idempotent);
        reading goes on."""
        if self._closing:
            return
        self._closing = True
        self._closed = self._loop.create_future()
        self._writer.submit(self._close_job)
        self._writer.stop()

    async def wait_closed(self) -> None:
        """Waits until :meth:`close` took effect; raises the first write error."""
        if self._closed is None:
            raise RuntimeError("wait_closed() before close()")
        await asyncio.shield(self._closed)
        if self._wexc is not None:
            raise self._wexc

    def reset(self, code: int = RESET_CANCELLED, reason: str = "") -> None:
        """Aborts both directions at once (see :meth:`peernet.Stream.reset`)."""
        self._closing = True
        self._s.reset(code, reason)

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, exc_type: Optional[type[BaseException]], *rest: object) -> None:
        if exc_type is not None:
            self.reset(RESET_CANCELLED, f"{exc_type.__name__} in the with block")
            return
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        return f"<peernet.AsyncStream {self.name!r} peer {self.peer.fingerprint}>"


async def open_async(open_stream: Callable[[KeyLike, str], Stream], key: KeyLike, name: str) -> AsyncStream:
    """``Node.open_stream_async``: the (quick) open runs in a worker thread."""
    loop = asyncio.get_running_loop()
    s = await loop.run_in_executor(None, open_stream, key, name)
    return AsyncStream(s, loop)


async def _serve(fn: Callable[[AsyncStream], Any], s: Stream, name: str) -> None:
    a = AsyncStream(s)
    try:
        await fn(a)
    except Exception as e:
        _log.warning(
            "stream handler %r failed on a stream from fingerprint %s: %s",
            name, s.peer.fingerprint, _describe(e),
        )
        a.reset(RESET_CANCELLED, _describe(e))
        return
    if a._closed is None and not s.closed:
        a.close()  # finish our direction if the function did not
    if a._closed is None:
        return  # it reset the stream
    try:
        await a.wait_closed()
    except Exception as e:
        _log.debug("stream handler %r: close after return: %s", name, e)


def _run_async_handler(fn: Callable[[AsyncStream], Any], s: Stream, name: str) -> None:
    """Runs ``async def fn(stream)`` on peernet's handler loop (the stream thread
    returns at once)."""
    from ._loop import _handler_loop

    asyncio.run_coroutine_threadsafe(_serve(fn, s, name), _handler_loop())
