"""Byte streams between two peers (issue 16): :class:`Stream` (blocking, file-like), the
node methods ``open_stream``, ``expose_stream`` and ``revoke_stream`` (mixed into
:class:`peernet.Node`), and the trampoline the core calls for an exposed stream
function. The asyncio form is in ``peernet._astreams``.

A stream carries bytes both ways, in order, with flow control: ``write`` waits while the
peer's receive window (256 KiB) is full. ``close()`` finishes our direction only (the
peer reads the end, ``b""``, and may still answer); ``reset()`` aborts both.
"""

from __future__ import annotations

import functools
import inspect
import logging
import operator
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union, overload

from . import _peernet
from ._errors import AlreadyExists, Timeout
from ._types import Key, KeyLike, _body, _Entry, _key, _seconds

if TYPE_CHECKING:
    from ._astreams import AsyncStream
    from ._peernet import NodeHandle

__all__ = ["Stream", "RESET_CANCELLED", "RESET_REFUSED", "RESET_TOO_MANY_STREAMS"]

_log = logging.getLogger("peernet")

#: Reset code of a stream dropped unfinished, or whose stream function raised.
RESET_CANCELLED = 0
#: Reset code of a stream no handler takes: no such name, or its authorize said no.
RESET_REFUSED = 1
#: Reset code of a stream over the peer's limit of open streams.
RESET_TOO_MANY_STREAMS = 2

#: Bytes per chunk of iteration (``for chunk in stream``).
CHUNK = 64 * 1024
#: Most bytes one read of the core returns (the receive window of a stream).
_READ_MAX = 256 * 1024

_F = TypeVar("_F", bound=Callable[..., Any])


def _describe(e: BaseException) -> str:
    msg = str(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


class Stream:
    """One byte stream to or from a peer, file-like.

    ``read(n)`` returns up to ``n`` bytes as soon as some arrived, ``read()`` everything
    up to the end; both return ``b""`` at the end (the peer closed its direction).
    ``write(data)`` returns once the stream took all of it. ``close()`` finishes our
    direction; ``reset(code, reason)`` aborts both, and the peer's reads and writes
    then raise :class:`StreamReset` with that code and reason. A ``with`` block closes
    the stream at its end, or resets it (code 0) if the block raised. One thread may
    read while another writes; every blocking call releases the GIL and can be
    interrupted with Ctrl-C. ``timeout`` (seconds; default :attr:`timeout`, ``None`` =
    wait forever) bounds a read or write; past it they raise :class:`Timeout`, and no
    data is lost: what ``read()`` had gathered is returned by the next read, and a
    write's ``Timeout`` says in ``written`` how many bytes the stream took.
    """

    def __init__(self, handle: _peernet.StreamHandle) -> None:
        self._h = handle
        self._peer = Key(handle.peer)
        # Bytes gathered by a read() that then failed (timeout, Ctrl-C): read first.
        self._pending = bytearray()
        self._eof = False
        #: Default timeout of reads and writes, in seconds (``None``: wait forever).
        self.timeout: Optional[float] = None

    @property
    def peer(self) -> Key:
        """The peer's key."""
        return self._peer

    @property
    def name(self) -> str:
        """The stream handler name it was opened to."""
        return self._h.name

    @property
    def id(self) -> int:
        """The stream's id on its connection."""
        return self._h.id

    @property
    def closed(self) -> bool:
        """Whether our direction is finished (:meth:`close`) or the stream was reset
        here (:meth:`reset`). Reading may go on after ``close()``."""
        return self._h.closed

    def _timeout(self, timeout: Optional[float]) -> Optional[float]:
        t = self.timeout if timeout is None else timeout
        return None if t is None else _seconds("timeout", t)

    def read(self, n: int = -1, timeout: Optional[float] = None) -> bytes:
        """Up to ``n`` bytes (``n < 0``: everything up to the end), waiting for the first;
        ``b""`` at the end. Raises :class:`StreamReset` if the stream was reset,
        :class:`Closed` if the connection ended first, :class:`Timeout` past ``timeout``."""
        n = operator.index(n)
        t = self._timeout(timeout)
        if n < 0:
            return self._read_all(t)
        if n == 0:
            return b""
        if self._pending:
            out = bytes(self._pending[:n])
            del self._pending[:n]
            return out
        if self._eof:
            return b""
        data = self._h.read(n, t)
        if not data:
            self._eof = True
        return data

    def _read_all(self, t: Optional[float]) -> bytes:
        deadline = None if t is None else time.monotonic() + t
        buf, self._pending = self._pending, bytearray()
        try:
            while not self._eof:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                chunk = self._h.read(_READ_MAX, left)
                if not chunk:
                    self._eof = True
                else:
                    buf += chunk
        except Timeout:
            self._pending = buf  # nothing read is lost: the next read returns it first
            raise Timeout(
                f"the end of stream {self.name!r} from {self._peer.fingerprint} did not come"
                f" within {t:g} s ({len(buf)} bytes came: the next read returns them first)"
            ) from None
        except BaseException:
            self._pending = buf
            raise
        return bytes(buf)

    def readinto(self, b: Union[bytearray, memoryview], timeout: Optional[float] = None) -> int:
        """Reads up to ``len(b)`` bytes into ``b``; returns how many (0 at the end)."""
        with memoryview(b) as view, view.cast("B") as m:
            data = self.read(len(m), timeout)
            m[: len(data)] = data
        return len(data)

    def write(self, data: Union[bytes, bytearray, memoryview], timeout: Optional[float] = None) -> int:
        """Writes all of ``data``; returns ``len(data)`` once the stream took it (it
        waits while the peer's window is full). Raises :class:`StreamReset` if the peer
        reset the stream (or refused it: code 1), ``ValueError`` after :meth:`close`."""
        b = _body(data)
        if self._h.closed:
            raise ValueError(f"write to stream {self.name!r} after close() or reset()")
        self._h.write(b, self._timeout(timeout))
        return len(b)

    def flush(self) -> None:
        """Nothing to do: :meth:`write` returns once the stream took the data."""

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return not self._h.closed

    def close(self) -> None:
        """Finishes our direction: the peer reads the end after everything written.
        Reading goes on. Idempotent; nothing after :meth:`reset`."""
        self._h.finish()

    def reset(self, code: int = RESET_CANCELLED, reason: str = "") -> None:
        """Aborts both directions; the peer sees :class:`StreamReset` with ``code``
        (applications use 16 and up) and ``reason`` (cut to 255 bytes of UTF-8)."""
        code = operator.index(code)
        if not 0 <= code <= 0xFFFFFFFF:
            raise ValueError(f"a reset code is 0..2**32-1, not {code}")
        self._h.reset(code, str(reason))

    def __iter__(self) -> Iterator[bytes]:
        """The chunks as they arrive (each up to 64 KiB), until the end."""
        while True:
            chunk = self.read(CHUNK)
            if not chunk:
                return
            yield chunk

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            # A block that raised must not look like a complete transfer to the peer.
            self.reset(RESET_CANCELLED, f"{exc_type.__name__} in the with block")

    def __repr__(self) -> str:
        return (
            f"<peernet.Stream {self.name!r} id {self.id} peer {self._peer.fingerprint}"
            f" closed={self.closed}>"
        )


def _finish(s: Stream, name: str) -> None:
    """After a stream function returned: finish our direction if it did not."""
    try:
        s.close()
    except Exception as e:  # the connection ended meanwhile: nothing to finish
        _log.debug("stream handler %r: close after return: %s", name, e)


def _stream_authorize(
    node_ref: weakref.ReferenceType[StreamNodeMixin], name: str, peer: bytes
) -> bool:
    """Runs on a stream thread before the stream flows: the user's predicate."""
    node = node_ref()
    entry = node._stream_handlers.get(name) if node is not None else None
    del node
    if entry is None or entry.authorize is None:
        return False
    try:
        return bool(entry.authorize(Key(peer)))
    except Exception:
        _log.exception("authorize predicate of stream handler %r raised; refusing", name)
        return False


def _stream_dispatch(
    node_ref: weakref.ReferenceType[StreamNodeMixin], name: str, handle: _peernet.StreamHandle
) -> None:
    """Runs on a stream thread of ``name`` with the GIL: the user's function."""
    s = Stream(handle)
    node = node_ref()
    entry = node._stream_handlers.get(name) if node is not None else None
    del node
    if entry is None:
        s.reset(RESET_REFUSED, f"stream handler {name!r} was revoked")
        return
    if entry.is_async:
        from ._astreams import _run_async_handler

        _run_async_handler(entry.func, s, name)
        return
    try:
        entry.func(s)
    except Exception as e:
        _log.warning(
            "stream handler %r failed on a stream from fingerprint %s: %s",
            name, s.peer.fingerprint, _describe(e),
        )
        s.reset(RESET_CANCELLED, _describe(e))
        return
    _finish(s, name)


class StreamNodeMixin:
    """The stream methods of :class:`peernet.Node` (mixed into it)."""

    if TYPE_CHECKING:
        _h: NodeHandle

    @property
    def _stream_handlers(self) -> dict[str, _Entry]:
        table: Optional[dict[str, _Entry]] = self.__dict__.get("_stream_table")
        if table is None:
            table = self.__dict__.setdefault("_stream_table", {})
        return table

    def open_stream(self, key: KeyLike, name: str) -> Stream:
        """Opens a byte stream to the stream handler ``name`` of ``key`` (connected and
        trusted). Returns at once: a refusal (no such handler, not authorized, too many
        streams) raises :class:`StreamReset` (code 1 or 2) from the first read or write.
        Raises :class:`NotConnected`, :class:`UntrustedPeer`, ``ValueError`` (the name is
        not 1 to 255 bytes), :class:`Overloaded` (16 streams of ours are open on that
        connection) or :class:`StreamReset` (a peer without streams)."""
        if not isinstance(name, str):
            raise TypeError("a stream handler name is a str")
        return Stream(_peernet.StreamHandle.open(self._h, _key(key), name))

    async def open_stream_async(self, key: KeyLike, name: str) -> AsyncStream:
        """Like :meth:`open_stream`, for asyncio: an :class:`AsyncStream`."""
        from ._astreams import open_async

        return await open_async(self.open_stream, key, name)

    @overload
    def expose_stream(
        self,
        name: str,
        handler: None = None,
        *,
        authorize: Optional[Callable[[Key], object]] = None,
        threads: int = 4,
    ) -> Callable[[_F], _F]: ...

    @overload
    def expose_stream(
        self,
        name: str,
        handler: _F,
        *,
        authorize: Optional[Callable[[Key], object]] = None,
        threads: int = 4,
    ) -> _F: ...

    def expose_stream(
        self,
        name: str,
        handler: Optional[_F] = None,
        *,
        authorize: Optional[Callable[[Key], object]] = None,
        threads: int = 4,
    ) -> Union[_F, Callable[[_F], _F]]:
        """Exposes ``handler(stream)`` as stream handler ``name`` to trusted peers; a
        call or a decorator (``@node.expose_stream("upload")``). It runs for every
        stream a peer opens, on ``threads`` threads of this name's own (not the
        handler threads, so streams never hold up calls; more streams wait for a
        thread, served per peer in turn); ``async def``: on peernet's asyncio loop,
        given an :class:`AsyncStream`. When it returns, our direction is closed if it
        did not close it; if it raises, the stream is reset (code 0, the exception's
        type and message as the reason). ``authorize(peer) -> bool`` refuses others
        (their stream is reset with code 1)."""
        if not isinstance(name, str):
            raise TypeError("a stream handler name is a str")
        if isinstance(threads, bool) or not isinstance(threads, int):
            raise TypeError("threads is an int")

        def register(fn: _F) -> _F:
            if not callable(fn):
                raise TypeError("a stream handler must be callable")
            table = self._stream_handlers
            if name in table:
                raise AlreadyExists(f"stream handler {name!r} is already exposed")
            table[name] = _Entry(fn, inspect.iscoroutinefunction(fn), authorize)
            ref = weakref.ref(self)
            try:
                _peernet.StreamHandle.expose(
                    self._h,
                    name,
                    functools.partial(_stream_dispatch, ref, name),
                    None if authorize is None else functools.partial(_stream_authorize, ref, name),
                    threads,
                )
            except BaseException:
                del table[name]
                raise
            return fn

        if handler is None:
            return register
        return register(handler)

    def revoke_stream(self, name: str) -> None:
        """Removes stream handler ``name``: new streams to it are refused (code 1);
        streams already open go on."""
        _peernet.StreamHandle.revoke(self._h, name)
        self._stream_handlers.pop(name, None)
