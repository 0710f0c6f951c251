"""What a node is doing, in numbers: :class:`NodeMetrics` (``Node.metrics()``) and
:class:`PeerDetail` (``Node.peer(key)``: why a peer is or is not connected).

Every field is described in docs/metrics.md under the same name (the OpenMetrics names
of ``Node.metrics_text()`` are listed there too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ._api import Key, PeerInfo

__all__ = ["NodeMetrics", "HandlerMetrics", "DialAttempt", "KnownAddress", "PeerDetail"]

#: Upper bounds (seconds) of the handler latency histogram buckets (then +Inf).
LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0, 10.0,
)


@dataclass(frozen=True)
class HandlerMetrics:
    """Counters of one handler name (``unknown``: names no handler has;
    ``peernet.rpc``: RPC)."""

    name: str
    calls: int = 0
    sends: int = 0
    no_such_handler: int = 0
    forbidden: int = 0
    handler_failed: int = 0
    overloaded: int = 0
    latency_buckets: tuple[int, ...] = ()
    """Cumulative counts of call times (read to answer queued) at most each of :data:`LATENCY_BUCKETS`, then +Inf."""
    latency_sum: float = 0.0
    """Total time of the timed calls in seconds."""


@dataclass(frozen=True)
class NodeMetrics:
    """A snapshot of a node's counters (since start) and gauges (now)."""

    enabled: bool = True
    handshakes_ok: int = 0
    handshakes_untrusted: int = 0
    handshakes_timeout: int = 0
    handshakes_failed: int = 0
    handshakes_refused: int = 0
    connections_open: int = 0
    peers_connected: int = 0
    reconnects: int = 0
    duplicates: int = 0
    discovery_in: int = 0
    discovery_out: int = 0
    discovery_dropped_rate_limited: int = 0
    discovery_dropped_malformed: int = 0
    discovery_dropped_table_full: int = 0
    calls_in: int = 0
    calls_out: int = 0
    sends_in: int = 0
    sends_out: int = 0
    overloaded: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    frames_in: int = 0
    frames_out: int = 0
    handlers: tuple[HandlerMetrics, ...] = ()


@dataclass(frozen=True)
class DialAttempt:
    """One dial attempt: when it ended (Unix time), the address, why it failed."""

    at: float
    address: str
    error: Optional[str]
    """``None``: it connected."""


@dataclass(frozen=True)
class KnownAddress:
    """An address a peer may be reached at. ``source`` is "manual", "discovery",
    "dial_back" or "remembered" (from the trust file)."""

    address: str
    source: str
    confirmed: bool
    last_seen: float


@dataclass(frozen=True)
class PeerDetail(PeerInfo):
    """:class:`PeerInfo` plus why the peer is (not) connected, and its traffic."""

    last_dial: Optional[DialAttempt] = None
    next_dial: Optional[float] = None
    """Unix time of the next automatic attempt (``None``: none scheduled)."""
    addresses: tuple[KnownAddress, ...] = ()
    stats: dict[str, int] = field(default_factory=dict)
    """bytes_in/out, frames_in/out, calls_in/out, sends_in/out, calls_served, errors."""


def node_metrics(raw: Any) -> NodeMetrics:
    counters, handlers = raw
    hs = tuple(
        HandlerMetrics(name=name, latency_buckets=tuple(buckets), latency_sum=total, **counts)
        for name, counts, buckets, total in handlers
    )
    c = dict(counters)
    enabled = bool(c.pop("enabled", 1))
    return NodeMetrics(enabled=enabled, handlers=hs, **c)


def peer_detail(info: PeerInfo, raw: Any) -> PeerDetail:
    last, next_dial, addrs, stats = raw
    return PeerDetail(
        key=Key(info.key),
        state=info.state,
        trusted=info.trusted,
        address=info.address,
        last_seen=info.last_seen,
        rpc=info.rpc,
        label=info.label,
        rtt=info.rtt,
        last_dial=DialAttempt(*last) if last is not None else None,
        next_dial=next_dial,
        addresses=tuple(KnownAddress(*a) for a in addrs),
        stats=dict(stats),
    )
