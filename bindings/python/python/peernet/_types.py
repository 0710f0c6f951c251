"""The value types of the Python layer: :class:`Key` and what accepts one, the handler
type aliases, the discovery settings (:class:`UdpDiscovery`, :class:`Mdns`) and the
records nodes hand back (:class:`TrustEntry`, :class:`PeerInfo`, :class:`Event`).
Re-exported by ``peernet._api`` and ``peernet``."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from . import _peernet

#: A handler: ``handler(peer, body) -> bytes`` (``None`` replies with empty bytes).
Handler = Callable[["Key", bytes], Union[bytes, bytearray, memoryview, None]]
#: An ``async def`` handler, awaited on peernet's asyncio loop.
AsyncHandler = Callable[["Key", bytes], Awaitable[Union[bytes, bytearray, memoryview, None]]]


class Key(bytes):
    """A node's identity: a 32-byte X25519 public key.

    A ``bytes`` subclass (hashable, comparable, usable as a dict key). ``Key(raw)`` takes
    32 raw bytes, ``Key.from_hex(s)`` 64 hex digits; ``key.hex()`` gives them back, and
    ``key.fingerprint`` is a short display form (not for security decisions).
    """

    def __new__(cls, raw: Union[bytes, bytearray, memoryview]) -> Key:
        if isinstance(raw, str):
            raise TypeError("Key() takes 32 raw bytes; use Key.from_hex() for text")
        b = bytes(raw)
        if len(b) != 32:
            raise ValueError(f"a key is 32 bytes, not {len(b)}")
        return super().__new__(cls, b)

    @classmethod
    def from_hex(cls, text: str) -> Key:
        """Parses 64 hex digits (either case)."""
        if not isinstance(text, str):
            raise TypeError("Key.from_hex() takes a str")
        return cls(_peernet.key_from_hex(text.strip()))

    @property
    def fingerprint(self) -> str:
        """First 8 bytes of SHA-256(key) as 16 hex digits, for display."""
        return _peernet.fingerprint(self)

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        return f"Key.from_hex('{self.hex()}')"


#: What the API accepts where a key is expected.
KeyLike = Union[Key, bytes, str]


def _key(k: KeyLike) -> Key:
    if isinstance(k, Key):
        return k
    if isinstance(k, str):
        return Key.from_hex(k)
    if isinstance(k, (bytes, bytearray, memoryview)):
        return Key(k)
    raise TypeError(f"expected a Key, 32 bytes or 64 hex digits, not {type(k).__name__}")


def _body(b: Union[bytes, bytearray, memoryview]) -> bytes:
    if isinstance(b, bytes):
        return b
    if isinstance(b, (bytearray, memoryview)):
        return bytes(b)
    raise TypeError(f"a body is bytes, not {type(b).__name__}")


def _seconds(name: str, s: float) -> float:
    if isinstance(s, bool) or not isinstance(s, (int, float)):
        raise TypeError(f"{name} is a number of seconds, not {type(s).__name__}")
    if not s >= 0:
        raise ValueError(f"{name} must be >= 0 seconds")
    return float(s)


@dataclass(frozen=True)
class UdpDiscovery:
    """UDP LAN discovery settings.

    ``broadcast=None`` sends to the directed broadcast address of every chosen IPv4
    interface that is up, and to the IPv6 link-local multicast group ``ff02::504e:4554``
    on every chosen IPv6 interface; tests and the demo pass
    ``broadcast=["127.255.255.255"]`` (explicit targets: no multicast group is joined). Entries may be
    ``"ip"`` (the discovery port is used) or ``"ip:port"``.

    ``allow_interfaces`` / ``deny_interfaces`` choose the interfaces the default targets
    come from, by name (``"eth0"``) or prefix ending in ``*`` (``"wg*"``); deny wins.
    Loopback, point-to-point and container bridges (``docker*``, ``veth*``, ``br-*``) are
    skipped unless ``allow_interfaces`` names them. Explicit ``broadcast`` targets are
    used as given. See docs/networks.md.
    """

    port: int = 4040
    interval: float = 5.0
    broadcast: Optional[Sequence[str]] = None
    allow_interfaces: Sequence[str] = ()
    deny_interfaces: Sequence[str] = ()

    def _tuple(self) -> tuple[int, float, list[str], list[str], list[str]]:
        if not 0 <= int(self.port) <= 65535:
            raise ValueError("discovery port must be 0..65535")
        for name, v in (("allow_interfaces", self.allow_interfaces),
                        ("deny_interfaces", self.deny_interfaces)):
            if isinstance(v, str):
                raise TypeError(f"{name} must be a list of interface names, not a string")
        return (int(self.port), _seconds("interval", self.interval), list(self.broadcast or []),
                list(self.allow_interfaces), list(self.deny_interfaces))


@dataclass(frozen=True)
class Mdns:
    """mDNS / DNS-SD discovery: advertise ``_peernet._tcp`` with this node's key in a TXT
    record and browse for the others (UDP 5353; interoperable with Avahi and Bonjour). A
    record is a hint only, like an announcement. The interface lists work as in
    :class:`UdpDiscovery`. See docs/networks.md."""

    allow_interfaces: Sequence[str] = ()
    deny_interfaces: Sequence[str] = ()

    def _tuple(self) -> tuple[list[str], list[str]]:
        for name, v in (("allow_interfaces", self.allow_interfaces),
                        ("deny_interfaces", self.deny_interfaces)):
            if isinstance(v, str):
                raise TypeError(f"{name} must be a list of interface names, not a string")
        return (list(self.allow_interfaces), list(self.deny_interfaces))


@dataclass(frozen=True)
class TrustEntry:
    """One entry of the trust store."""

    key: Key
    label: str
    added_at: int
    rpc: bool
    addresses: tuple[str, ...] = ()
    """Addresses a handshake with the peer completed over, newest first (dialed after a
    restart)."""
    manual_addresses: tuple[str, ...] = ()
    """``host:port`` attached with :meth:`Node.add_address` (dialed first)."""


@dataclass(frozen=True)
class PeerInfo:
    """A snapshot of what the node knows about a peer."""

    key: Key
    state: str
    """"connected", "connecting" or "disconnected"."""
    trusted: bool
    address: Optional[str]
    last_seen: Optional[float]
    """Unix time the peer was last heard from."""
    rpc: bool = False
    label: str = ""
    rtt: Optional[float] = None
    """Heartbeat round-trip time in seconds, when connected."""


@dataclass(frozen=True)
class Event:
    """Something that happened: ``kind`` is "discovered", "connected", "disconnected",
    "lost", "network_changed" or "refused" (an untrusted key completed a handshake with
    this node and was turned away: ``key`` is the client's, ``address`` where it came
    from)."""

    kind: str
    key: Optional[Key]
    address: Optional[str]
    reason: str = ""
    """The reason or detail, as text ("" if none)."""
    close_reason: Optional[str] = None
    """For "disconnected": why the last connection closed, as a stable name —
    "peer_goodbye", "peer_eof", "io", "local_shutdown", "local_disconnect",
    "trust_revoked", "heartbeat_timeout", "duplicate", "protocol" or "local" (the same
    kinds as ``peernet.Closed`` errors). ``None`` for the other kinds."""


@dataclass
class _Entry:
    func: Callable[..., Any]
    is_async: bool
    authorize: Optional[Callable[[Key], object]] = field(default=None)
