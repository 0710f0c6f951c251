"""asyncio for :class:`peernet.Node`: ``async with``, the ``*_async`` methods that wait on
the network, and ``async for ev in node.aevents()``.

None of them blocks the event loop or polls it: the core runs the operation on its own
runtime (without the GIL) and completes it on the node's completion thread, which hands
the result to the loop with one ``loop.call_soon_threadsafe`` per batch (see
``_Inbox``). Events reach an ``aevents()`` iterator the same way, from the node's
event thread.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

if TYPE_CHECKING:
    from ._api import Event, KeyLike, Node
    from ._pairing import Invite, Paired
    from ._peernet import NodeHandle


def _resolve(fut: asyncio.Future[Any], convert: Callable[[bytes], Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        try:
            fut.set_result(convert(value))
        except Exception as e:
            fut.set_exception(e)
    else:
        fut.set_exception(value)


class _Inbox:
    """Completions on their way to one event loop. The completion thread appends and wakes
    the loop only when the inbox was empty (one ``call_soon_threadsafe``, i.e. one
    self-pipe write and one loop wake-up, per batch instead of per call); the loop then
    resolves everything queued so far."""

    __slots__ = ("loop", "items", "lock", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # A weak reference: the inbox is the value of a WeakKeyDictionary keyed by the loop.
        self.loop = weakref.ref(loop)
        self.items: list[tuple[asyncio.Future[Any], Callable[[bytes], Any], bool, Any]] = []
        self.lock = threading.Lock()
        self.scheduled = False

    def push(self, fut: asyncio.Future[Any], convert: Callable[[bytes], Any], ok: bool, value: Any) -> None:
        with self.lock:
            self.items.append((fut, convert, ok, value))
            if self.scheduled:
                return
            self.scheduled = True
        loop = self.loop()
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self.drain)
                return
            except RuntimeError:
                pass
        # The loop is closed or gone: nobody waits for these results.
        with self.lock:
            self.items.clear()
            self.scheduled = False

    def drain(self) -> None:
        with self.lock:
            items, self.items = self.items, []
            self.scheduled = False
        for fut, convert, ok, value in items:
            _resolve(fut, convert, ok, value)


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox] = weakref.WeakKeyDictionary()
_inboxes_lock = threading.Lock()


def _inbox(loop: asyncio.AbstractEventLoop) -> _Inbox:
    box = _inboxes.get(loop)
    if box is None:
        with _inboxes_lock:
            box = _inboxes.setdefault(loop, _Inbox(loop))
    return box


def _completer(
    loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], convert: Callable[[bytes], Any]
) -> Callable[[bool, Any], None]:
    """The callback the core completes an async call with (on its completion thread)."""
    push = _inbox(loop).push

    def done(ok: bool, value: Any) -> None:
        push(fut, convert, ok, value)

    return done


def _unit(b: bytes) -> None:
    return None


class _EventFeed:
    """Events on their way from the node's event thread to one loop: a bounded deque
    (the oldest are dropped when the consumer falls behind) and at most one pending
    wake-up of the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self.loop = loop
        self.items: collections.deque[Event] = collections.deque(maxlen=maxsize)
        self.lock = threading.Lock()
        self.waiter: Optional[asyncio.Future[None]] = None
        self.scheduled = False

    def put(self, ev: Event) -> None:  # on the node's event thread
        with self.lock:
            self.items.append(ev)
            if self.scheduled:
                return
            self.scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._wake)
        except RuntimeError:
            pass  # the loop is closed: nobody iterates any more

    def _wake(self) -> None:  # on the loop
        with self.lock:
            self.scheduled = False
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def pop(self) -> Optional[Event]:
        with self.lock:
            return self.items.popleft() if self.items else None


class AsyncNodeMixin:
    """The asyncio half of :class:`peernet.Node` (mixed into it)."""

    if TYPE_CHECKING:
        _h: NodeHandle
        _event_callbacks: list[Callable[[Event], object]]

        def close(self) -> None: ...
        def _ensure_events(self) -> None: ...
        def invite(
            self, expiry: float = ..., name: Optional[str] = ..., code: bool = ...
        ) -> Invite: ...
        def join(
            self, code_or_ticket: str, timeout: float = ..., name: Optional[str] = ...
        ) -> Paired: ...
        @property
        def closed(self) -> bool: ...

    async def __aenter__(self) -> Node:
        return self  # type: ignore[return-value]

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Like :meth:`close`, awaitable: the node stops (waiting for its threads) in a
        worker thread, so the loop keeps running meanwhile."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def _start(self, convert: Callable[[bytes], Any]) -> tuple[asyncio.Future[Any], Callable[[bool, Any], None]]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        return fut, _completer(loop, fut, convert)

    async def connect_async(self, key: KeyLike, address: str, timeout: float = 5.0) -> None:
        """Like :meth:`connect`, awaitable."""
        from ._api import _key, _seconds

        fut, done = self._start(_unit)
        self._h.connect_cb(_key(key), address, _seconds("timeout", timeout), done)
        await fut

    async def wait_connected_async(self, key: KeyLike, timeout: float = 10.0) -> None:
        """Like :meth:`wait_connected`, awaitable; raises :class:`Timeout`."""
        from ._api import _key, _seconds

        fut, done = self._start(_unit)
        self._h.wait_connected_cb(_key(key), _seconds("timeout", timeout), done)
        await fut

    async def send_async(
        self, key: KeyLike, name: str, body: Union[bytes, bytearray, memoryview] = b""
    ) -> None:
        """Like :meth:`send`, awaitable: it waits (without blocking the loop) while the
        connection's send queue is full."""
        from ._api import _body, _key

        fut, done = self._start(_unit)
        self._h.send_cb(_key(key), name, _body(body), done)
        await fut

    async def invite_async(
        self, expiry: float = 600.0, name: Optional[str] = None, code: bool = True
    ) -> Invite:
        """Like :meth:`invite`, awaitable (binding the listener runs in a worker thread)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, lambda: self.invite(expiry, name, code)
        )

    async def join_async(
        self, code_or_ticket: str, timeout: float = 30.0, name: Optional[str] = None
    ) -> Paired:
        """Like :meth:`join`, awaitable: the blocking join (GIL released) runs in a
        worker thread, so the loop keeps running."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, lambda: self.join(code_or_ticket, timeout, name)
        )

    async def aevents(
        self, timeout: Optional[float] = None, maxsize: int = 1024
    ) -> AsyncIterator[Event]:
        """``async for ev in node.aevents()``: the events from now on, like
        :meth:`events`. With ``timeout``, stops after that many seconds without an event;
        it also stops when the node closes. Holds ``maxsize`` events; older ones are
        dropped when the consumer falls behind."""
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        loop = asyncio.get_running_loop()
        feed = _EventFeed(loop, maxsize)
        self._event_callbacks.append(feed.put)
        try:
            self._ensure_events()
            quiet_until = None if timeout is None else loop.time() + timeout
            while not self.closed:
                ev = feed.pop()
                if ev is not None:
                    yield ev
                    if timeout is not None:
                        quiet_until = loop.time() + timeout
                    continue
                if quiet_until is not None and loop.time() >= quiet_until:
                    return
                waiter: asyncio.Future[None] = loop.create_future()
                feed.waiter = waiter
                if feed.items:  # arrived between pop() and the waiter
                    feed.waiter = None
                    continue
                # Wakes on the next event; the 0.25 s bound only notices close().
                bound = 0.25 if quiet_until is None else min(0.25, quiet_until - loop.time())
                try:
                    await asyncio.wait_for(waiter, max(0.0, bound))
                except asyncio.TimeoutError:
                    pass
                finally:
                    feed.waiter = None
        finally:
            try:
                self._event_callbacks.remove(feed.put)
            except ValueError:
                pass
