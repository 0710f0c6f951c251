"""Exceptions raised by peernet: one class per status of the C API."""

from __future__ import annotations

from typing import Optional

__all__ = [
    "PeerNetError",
    "NotConnected",
    "Timeout",
    "NoSuchHandler",
    "Forbidden",
    "HandlerFailed",
    "Overloaded",
    "UntrustedPeer",
    "HandshakeFailed",
    "PayloadTooLarge",
    "CorruptFile",
    "AlreadyExists",
    "Closed",
    "InternalError",
    "Busy",
    "StreamReset",
]


class PeerNetError(Exception):
    """Base class of every error peernet raises (bad arguments raise TypeError/ValueError)."""


class NotConnected(PeerNetError):
    """There is no live connection to that peer."""


class Timeout(PeerNetError, TimeoutError):
    """The deadline passed before the operation completed."""


class NoSuchHandler(PeerNetError):
    """The peer exposes no handler of that name (or it is not reachable: default deny)."""


class Forbidden(PeerNetError):
    """The peer's handler (or its RPC) refused this caller."""


class HandlerFailed(PeerNetError):
    """The peer's handler raised or failed; the message says why."""


class Overloaded(PeerNetError):
    """A queue was full; nothing ran."""


class UntrustedPeer(PeerNetError):
    """The peer's key is not trusted (here or there)."""


class HandshakeFailed(PeerNetError):
    """The Noise handshake failed."""


class PayloadTooLarge(PeerNetError):
    """The message exceeds the receiver's frame limit (the connection stays up)."""


class CorruptFile(PeerNetError):
    """The identity or trust file exists but does not parse; it is never replaced."""


class AlreadyExists(PeerNetError, ValueError):
    """The thing already exists (for example a handler name)."""


class Closed(PeerNetError):
    """The node or connection closed before the operation completed."""


class InternalError(PeerNetError):
    """A bug inside peernet."""


class Busy(PeerNetError):
    """Another node, in this process or another, holds the data directory: two processes
    on one identity and trust store would undo each other's changes. Stop that node (its
    pid is :attr:`pid`, when known) or use another data directory (:attr:`path`)."""

    pid: Optional[int] = None
    path: Optional[str] = None


class StreamReset(PeerNetError):
    """A stream was reset: by the peer, with its application's :attr:`code` (16 and up)
    and :attr:`reason`; or by the library: code 0 (cancelled: the other end dropped it
    unfinished, or its stream function raised), 1 (refused: no stream handler of that
    name, or its authorize predicate said no), 2 (the peer has too many streams open)."""

    code: int = 0
    reason: str = ""
