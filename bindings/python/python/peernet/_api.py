"""The Pythonic layer over the compiled core (`peernet._peernet`)."""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import logging
import os
import queue
import time
import weakref
from collections.abc import Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union, overload

from . import _peernet
from ._aio import AsyncNodeMixin, _completer
from ._errors import AlreadyExists, Closed, Timeout
from ._files import FilesMixin
from ._loop import _authorize as _authorize
from ._loop import _deliver_event as _deliver_event
from ._loop import _dispatch as _dispatch
from ._loop import _handler_loop as _handler_loop
from ._loop import _identity as _identity
from ._loop import _json_args as _json_args
from ._loop import _json_result as _json_result
from ._loop import _rpc_dispatch as _rpc_dispatch
from ._pairing import Invite, Paired
from ._streams import StreamNodeMixin
from ._types import AsyncHandler as AsyncHandler
from ._types import Event as Event
from ._types import Handler as Handler
from ._types import Key as Key
from ._types import KeyLike as KeyLike
from ._types import Mdns as Mdns
from ._types import PeerInfo as PeerInfo
from ._types import TrustEntry as TrustEntry
from ._types import UdpDiscovery as UdpDiscovery
from ._types import _body as _body
from ._types import _Entry as _Entry
from ._types import _key as _key
from ._types import _seconds as _seconds

__all__ = [
    "Key",
    "UdpDiscovery",
    "TrustEntry",
    "PeerInfo",
    "Event",
    "Node",
    "Handler",
    "AsyncHandler",
    "KeyLike",
]

if TYPE_CHECKING:
    from ._metrics import NodeMetrics, PeerDetail

_log = logging.getLogger("peernet")

_H = TypeVar("_H", bound=Callable[..., Any])


def _refresh_log_level() -> None:
    _peernet.set_log_level(_log.getEffectiveLevel())


_live_nodes: weakref.WeakSet[Node] = weakref.WeakSet()


@atexit.register
def _at_exit() -> None:
    for n in list(_live_nodes):
        try:
            n.close()
        except Exception:
            pass
    _peernet._finalize()


def data_path(data_dir: Union[str, os.PathLike[str]]) -> str:
    """``data_dir`` as the node opens it: a ``str`` or any ``os.PathLike`` (``Path``), with
    a leading ``~`` or ``~user`` expanded (``Node("~/.local/share/app/peernet")`` is in
    the home directory, not in a folder named ``~``)."""
    if isinstance(data_dir, bytes) or not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir is a str or os.PathLike, not {type(data_dir).__name__}")
    path = os.fspath(data_dir)
    if not isinstance(path, str):
        raise TypeError("data_dir must be a text path, not bytes")
    if not path:
        raise ValueError("data_dir is empty: give the directory for the identity and trust store")
    return os.path.expanduser(path)


class Node(StreamNodeMixin, AsyncNodeMixin, FilesMixin):
    """A PeerNet node: identity and trust store in ``data_dir`` (a ``str`` or
    ``os.PathLike``; ``~`` is expanded), listening on ``listen``.

    Use it as a context manager, ``with`` or ``async with`` (or call :meth:`close`); a node that is garbage-collected
    is stopped too. Every blocking method releases the GIL and can be interrupted with
    Ctrl-C. Handlers and event callbacks run on the node's own threads
    (``handler_threads`` of them), never on the network threads; RPC runs on its own
    ``rpc_threads``, each call within ``rpc_timeout`` seconds (see docs/python.md: a
    Python thread cannot be stopped, so a function past its budget still runs to its end).
    """

    def __init__(
        self,
        data_dir: Union[str, os.PathLike[str]],
        *,
        listen: Optional[str] = "[::]:0",
        discovery: Optional[UdpDiscovery] = None,
        heartbeat: tuple[float, float] = (15.0, 45.0),
        max_frame: int = 1 << 20,
        handshake_timeout: float = 5.0,
        handler_threads: int = 4,
        rpc_modules: Optional[Iterable[str]] = None,
        network_monitor: Optional[float] = None,
        auto_connect: bool = True,
        rpc_timeout: float = 5.0,
        rpc_threads: int = 1,
        mdns: Optional[Mdns] = None,
    ) -> None:
        if discovery is not None and not isinstance(discovery, UdpDiscovery):
            raise TypeError("discovery must be a peernet.UdpDiscovery or None")
        if mdns is not None and not isinstance(mdns, Mdns):
            raise TypeError("mdns must be a peernet.Mdns or None")
        if isinstance(rpc_modules, str):
            raise TypeError("rpc_modules is a list of module names, not a str")
        hb = (_seconds("heartbeat interval", heartbeat[0]), _seconds("heartbeat timeout", heartbeat[1]))
        rpc_budget = _seconds("rpc_timeout", rpc_timeout)
        _refresh_log_level()
        self._handlers: dict[str, _Entry] = {}
        self._event_callbacks: list[Callable[[Event], object]] = []
        self._event_queues: list[queue.Queue[Event]] = []
        self._h = _peernet.NodeHandle.start(
            data_path(data_dir),
            listen,
            discovery._tuple() if discovery is not None else None,
            hb,
            int(max_frame),
            _seconds("handshake_timeout", handshake_timeout),
            int(handler_threads),
            None if network_monitor is None else _seconds("network_monitor", network_monitor),
            bool(auto_connect),
            int(rpc_threads),
            mdns._tuple() if mdns is not None else None,
        )
        self._key = Key(self._h.key())
        self.rpc_modules: Optional[frozenset[str]] = (
            None if rpc_modules is None else frozenset(rpc_modules)
        )
        self._h.set_rpc_dispatcher(
            functools.partial(_rpc_dispatch, self.rpc_modules), rpc_budget
        )
        _live_nodes.add(self)

    # ---- identity and lifecycle ----

    @property
    def key(self) -> Key:
        """This node's public key."""
        return self._key

    @property
    def port(self) -> int:
        """The TCP port the node listens on (0 = none)."""
        return self._h.port

    @property
    def address(self) -> Optional[str]:
        """The listener's address, "ip:port"."""
        return self._h.local_addr

    @property
    def closed(self) -> bool:
        """Whether the node was closed."""
        return self._h.closed

    def close(self) -> None:
        """Stops the node: closes its connections (calls in flight fail with
        :class:`Closed`), drops its handlers and waits for its threads. Idempotent."""
        self._h.close()
        self._handlers.clear()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        h = getattr(self, "_h", None)
        if h is not None and not h.closed:
            # Dropping the handle stops the node without blocking (no join here: the
            # collector may run on any thread, even a handler thread of this node).
            del self._h

    def __repr__(self) -> str:
        return f"<peernet.Node fingerprint {self._key.fingerprint} {self.address} closed={self.closed}>"

    # ---- trust ----

    def trust(self, key: KeyLike, label: Optional[str] = None) -> None:
        """Trusts ``key`` (persisted in the data dir); with ``label``, sets its label."""
        self._h.trust(_key(key), label)

    def untrust(self, key: KeyLike) -> bool:
        """Removes ``key`` from the trust store (and its RPC right) and drops its live
        connections. Returns whether it was trusted."""
        return self._h.untrust(_key(key))

    def trusted(self) -> list[TrustEntry]:
        """The trust store's entries."""
        return [
            TrustEntry(Key(k), label, added, rpc, tuple(addrs), tuple(manual))
            for k, label, added, rpc, addrs, manual in self._h.trusted()
        ]

    def add_address(self, key: KeyLike, address: str) -> str:
        """Attaches a manual address to the trusted ``key``: ``"192.168.1.20:7100"``,
        ``"[2001:db8::1]:7100"`` or ``"laptop.example:7100"`` (a host name is resolved at
        every dial round). Persisted in the trust file, dialed before the peer's other
        addresses; a hint only, the handshake still authenticates the key. At most 4 per
        peer. Returns the canonical form stored. Raises ``UntrustedPeer`` (trust it
        first) or ``ValueError`` (not host:port, or 4 already)."""
        return self._h.add_address(_key(key), str(address))

    def remove_address(self, key: KeyLike, address: str) -> bool:
        """Detaches a manual address; returns whether it was attached."""
        return self._h.remove_address(_key(key), str(address))

    def grant_rpc(self, key: KeyLike, allowed: bool = True) -> None:
        """Grants (or with ``allowed=False`` withdraws) RPC rights to a trusted peer.
        Persisted; takes effect on the peer's next call."""
        self._h.grant_rpc(_key(key), bool(allowed))

    # ---- handlers ----

    @overload
    def expose(
        self, name: str, handler: None = None, *, authorize: Optional[Callable[[Key], object]] = None
    ) -> Callable[[_H], _H]: ...

    @overload
    def expose(
        self, name: str, handler: _H, *, authorize: Optional[Callable[[Key], object]] = None
    ) -> _H: ...

    def expose(
        self,
        name: str,
        handler: Optional[_H] = None,
        *,
        authorize: Optional[Callable[[Key], object]] = None,
    ) -> Union[_H, Callable[[_H], _H]]:
        """Exposes ``handler(peer, body) -> bytes`` as ``name`` to trusted peers.

        Works as a call (``node.expose("echo", fn)``) and as a decorator
        (``@node.expose("echo")``). ``authorize(peer) -> bool`` optionally restricts
        callers (others get :class:`Forbidden`). An exception in the handler reaches the
        caller as :class:`HandlerFailed` with its type and message. ``async def``
        handlers are awaited on peernet's asyncio loop instead of holding a thread.
        """
        if not isinstance(name, str):
            raise TypeError("a handler name is a str")

        def register(fn: _H) -> _H:
            if not callable(fn):
                raise TypeError("a handler must be callable")
            is_async = inspect.iscoroutinefunction(fn)
            if name in self._handlers:
                raise AlreadyExists(f"handler {name!r} is already exposed")
            self._handlers[name] = _Entry(fn, is_async, authorize)
            ref = weakref.ref(self)
            try:
                self._h.expose(
                    name,
                    functools.partial(_dispatch, ref, name),
                    None if authorize is None else functools.partial(_authorize, ref, name),
                )
            except BaseException:
                del self._handlers[name]
                raise
            return fn

        if handler is None:
            return register
        return register(handler)

    def revoke(self, name: str) -> None:
        """Removes handler ``name``; callers get :class:`NoSuchHandler` from now on."""
        self._h.revoke(name)
        self._handlers.pop(name, None)

    # ---- pairing ----

    def invite(
        self, expiry: float = 600.0, name: Optional[str] = None, code: bool = True
    ) -> Invite:
        """Opens an invite (default 10 minutes): its :attr:`Invite.code` and
        :attr:`Invite.ticket` let another node :meth:`join`. The node opens its own
        short-lived pairing listener; ``name`` is what the joiner will label this node
        (default: the host name)."""
        return Invite(_peernet.invite(self._h, _seconds("expiry", expiry), name, bool(code)))

    def join(
        self, code_or_ticket: str, timeout: float = 30.0, name: Optional[str] = None
    ) -> Paired:
        """Pairs with an invite, by short code (found on the LAN) or ticket. A typo is a
        ``ValueError`` naming the part that is wrong, before any traffic; a wrong code
        is :class:`HandshakeFailed`. Afterwards both nodes trust each other."""
        from ._pairing import _paired

        return _paired(
            _peernet.join(self._h, str(code_or_ticket), _seconds("timeout", timeout), name)
        )

    # ---- connections ----

    def connect(self, key: KeyLike, address: str, timeout: float = 5.0) -> None:
        """Dials ``address`` ("ip:port") and authenticates it as ``key``, which must be
        trusted. Returns at once if already connected."""
        self._h.connect(_key(key), address, _seconds("timeout", timeout))

    def disconnect(self, key: KeyLike) -> None:
        """Closes every connection to ``key``."""
        self._h.disconnect(_key(key))

    def is_connected(self, key: KeyLike) -> bool:
        """Whether an authenticated connection to ``key`` is up."""
        return self._h.is_connected(_key(key))

    def verification_words(self, key: KeyLike) -> Optional[str]:
        """Five words derived from the live connection's Noise handshake, the same on
        both ends: compare them with the other screen to rule out a man in the middle
        (``None`` when not connected; every new connection has new words)."""
        return self._h.verification_words(_key(key))

    def wait_connected(self, key: KeyLike, timeout: float = 10.0) -> None:
        """Waits until ``key`` is connected; raises :class:`Timeout` otherwise."""
        self._h.wait_connected(_key(key), _seconds("timeout", timeout))

    def discovered(self, key: KeyLike, address: str) -> None:
        """Manual discovery: tells the node that ``key`` may be reached at ``address``
        (for programs with their own discovery). A trusted peer is then connected
        automatically (when ``auto_connect``)."""
        self._h.discovered(_key(key), address)

    def lost(self, key: KeyLike) -> None:
        """Manual discovery: ``key`` is no longer around (live connections stay up)."""
        self._h.lost(_key(key))

    def peers(self) -> list[PeerInfo]:
        """Every peer the node knows of (connected, discovered or trusted)."""
        return [
            PeerInfo(Key(k), state, trusted, addr, seen, rpc, label, rtt)
            for k, state, trusted, rpc, label, addr, seen, rtt in self._h.peers()
        ]

    # ---- metrics (see peernet._metrics and docs/metrics.md) ----

    def metrics(self) -> "NodeMetrics":
        """A snapshot of the node's counters and gauges."""
        from ._metrics import node_metrics

        return node_metrics(self._h.metrics())

    def set_metrics(self, on: bool) -> None:
        """Turns metrics counting on or off while the node runs, for it and every
        connection (a node starts with it on). What was counted stays; while off
        nothing new is counted; ``metrics().enabled`` tells which."""
        self._h.set_metrics(on)

    def metrics_text(self) -> str:
        """The same snapshot in OpenMetrics text format (ends with ``# EOF``)."""
        return self._h.metrics_text()

    def peer(self, key: KeyLike) -> "Optional[PeerDetail]":
        """What the node knows of ``key`` (``None``: nothing): state, addresses with their
        source, traffic, and why it is not connected (last dial, its error, next dial)."""
        from ._metrics import peer_detail

        k = _key(key)
        info = next((p for p in self.peers() if p.key == k), None)
        raw = self._h.peer_detail(k)
        return None if info is None or raw is None else peer_detail(info, raw)

    # ---- messages ----

    def call(
        self, key: KeyLike, name: str, body: Union[bytes, bytearray, memoryview] = b"", timeout: float = 5.0
    ) -> bytes:
        """Calls handler ``name`` on ``key`` and returns its reply."""
        return self._h.call(_key(key), name, _body(body), _seconds("timeout", timeout))

    async def call_async(
        self, key: KeyLike, name: str, body: Union[bytes, bytearray, memoryview] = b"", timeout: float = 5.0
    ) -> bytes:
        """Like :meth:`call`, awaitable; any number may be in flight at once."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        done = _completer(loop, fut, _identity)
        self._h.call_cb(_key(key), name, _body(body), _seconds("timeout", timeout), done)
        return await fut

    def send(self, key: KeyLike, name: str, body: Union[bytes, bytearray, memoryview] = b"") -> None:
        """Sends ``body`` to handler ``name`` on ``key``: fire-and-forget, no reply.
        Raises :class:`NotConnected` when the peer is offline."""
        self._h.send(_key(key), name, _body(body))

    def rpc_call(
        self, key: KeyLike, module: str, function: str, args: Sequence[Any] = (), timeout: float = 5.0
    ) -> Any:
        """Calls ``module.function(*args)`` on a peer that granted us RPC; arguments
        and result travel as JSON."""
        return _json_result(
            self._h.rpc_call(_key(key), module, function, _json_args(args), _seconds("timeout", timeout))
        )

    async def rpc_call_async(
        self, key: KeyLike, module: str, function: str, args: Sequence[Any] = (), timeout: float = 5.0
    ) -> Any:
        """Like :meth:`rpc_call`, awaitable."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        done = _completer(loop, fut, _json_result)
        self._h.rpc_call_cb(
            _key(key), module, function, _json_args(args), _seconds("timeout", timeout), done
        )
        return await fut

    # ---- events ----

    def on_event(self, callback: Callable[[Event], object]) -> Callable[[Event], object]:
        """Calls ``callback(event)`` for every event, on the node's event thread (in
        order). Usable as a decorator. Exceptions are logged and ignored."""
        if not callable(callback):
            raise TypeError("callback must be callable")
        self._event_callbacks.append(callback)
        self._ensure_events()
        return callback

    def events(
        self, timeout: Optional[float] = None, maxsize: int = 1024
    ) -> Generator[Event, None, None]:
        """Iterates over events from now on (the first callback or iterator of a node
        also gets the events since the node started). With ``timeout``, stops after that many
        seconds without an event; call ``.close()`` on the iterator to stop early. The
        queue holds ``maxsize`` events; older ones are
        dropped when the consumer falls behind."""
        q: queue.Queue[Event] = queue.Queue(maxsize)

        def put(ev: Event) -> None:
            while True:
                try:
                    q.put_nowait(ev)
                    return
                except queue.Full:
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        pass

        self._event_callbacks.append(put)
        self._ensure_events()
        return self._iter_events(q, put, timeout)

    def _iter_events(
        self, q: queue.Queue[Event], put: Callable[[Event], None], timeout: Optional[float]
    ) -> Generator[Event, None, None]:
        try:
            while not self.closed:
                try:
                    yield q.get(timeout=0.25 if timeout is None else timeout)
                except queue.Empty:
                    if timeout is not None:
                        return
        finally:
            try:
                self._event_callbacks.remove(put)
            except ValueError:
                pass

    def wait_event(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """Waits for an event matching ``predicate`` (one that happens after this call
        starts); raises :class:`Timeout` after ``timeout`` seconds."""
        deadline = time.monotonic() + _seconds("timeout", timeout)
        q: queue.Queue[Event] = queue.Queue()
        self._event_callbacks.append(q.put)
        try:
            self._ensure_events()
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("no matching event before the deadline")
                try:
                    ev = q.get(timeout=min(left, 0.25))
                except queue.Empty:
                    continue
                if predicate(ev):
                    return ev
        finally:
            self._event_callbacks.remove(q.put)

    def _ensure_events(self) -> None:
        if getattr(self, "_events_on", False):
            return
        if self.closed:
            raise Closed("node closed")
        self._h.set_event_callback(functools.partial(_deliver_event, weakref.ref(self)))
        self._events_on = True
