"""PeerNet: default-deny, authenticated peer-to-peer messaging for programs on a LAN.

Each :class:`Node` has an X25519 identity (:class:`Key`), talks only to peers whose keys
it trusts, and reaches them by key. Programs :meth:`Node.expose` named handlers; trusted
peers :meth:`Node.call` them or :meth:`Node.send` to them. For data of any length,
:meth:`Node.expose_stream` and :meth:`Node.open_stream` give a file-like :class:`Stream`
both ways. See ``docs/python.md``.
"""

from ._api import (
    AsyncHandler,
    Event,
    Handler,
    Key,
    KeyLike,
    Mdns,
    Node,
    PeerInfo,
    TrustEntry,
    UdpDiscovery,
)
from ._errors import (
    AlreadyExists,
    Busy,
    Closed,
    CorruptFile,
    Forbidden,
    HandlerFailed,
    HandshakeFailed,
    InternalError,
    NoSuchHandler,
    NotConnected,
    Overloaded,
    PayloadTooLarge,
    PeerNetError,
    StreamReset,
    Timeout,
    UntrustedPeer,
)
from ._pairing import Invite, Paired
from ._files import ReceivedFile, SendReport
from ._metrics import DialAttempt, HandlerMetrics, KnownAddress, NodeMetrics, PeerDetail
from ._peernet import __version__
from ._astreams import AsyncStream
from ._streams import RESET_CANCELLED, RESET_REFUSED, RESET_TOO_MANY_STREAMS, Stream

__all__ = [
    "__version__",
    "AsyncHandler",
    "Event",
    "Handler",
    "Key",
    "KeyLike",
    "Node",
    "Invite",
    "Paired",
    "PeerInfo",
    "ReceivedFile",
    "SendReport",
    "NodeMetrics",
    "HandlerMetrics",
    "PeerDetail",
    "DialAttempt",
    "KnownAddress",
    "TrustEntry",
    "UdpDiscovery",
    "Mdns",
    "Stream",
    "AsyncStream",
    "RESET_CANCELLED",
    "RESET_REFUSED",
    "RESET_TOO_MANY_STREAMS",
    "AlreadyExists",
    "Busy",
    "Closed",
    "CorruptFile",
    "Forbidden",
    "HandlerFailed",
    "HandshakeFailed",
    "InternalError",
    "NoSuchHandler",
    "NotConnected",
    "Overloaded",
    "PayloadTooLarge",
    "PeerNetError",
    "StreamReset",
    "Timeout",
    "UntrustedPeer",
]
