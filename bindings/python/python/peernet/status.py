"""``peernet status``: a table of the peers a node knows (state, address, RTT, bytes,
last seen, and for a peer that is not connected, why: the last dial's error and when
the next one is due), once or refreshed.

Where the table comes from. A data directory is locked by the one node running on it,
so a second process cannot read a running node's state from the directory. Two ways,
no control socket (nothing new listens, nothing to secure):

- ``peernet serve --status-every SECONDS`` prints the table from inside the serving
  node, every SECONDS, for as long as it runs;
- ``peernet status`` on a data directory no node runs on starts a short-lived node of
  its own: it dials the trusted peers at their remembered addresses (and, with
  ``--discovery``, those it hears of), then prints what it found — "can I reach my
  peers from here, and if not, why". On a directory a node holds it says so and points
  to ``serve --status-every``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional

from . import _cli_mdns
from ._api import Node, UdpDiscovery
from ._metrics import PeerDetail


def _ago(t: Optional[float], now: float) -> str:
    if t is None:
        return "-"
    s = max(0.0, now - t)
    if s < 60:
        return f"{s:.0f}s ago"
    if s < 3600:
        return f"{s / 60:.0f}m ago"
    return f"{s / 3600:.1f}h ago"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _why(d: PeerDetail, now: float) -> str:
    if d.state == "connected":
        return ""
    parts = []
    if not d.trusted:
        parts.append("not trusted")
    elif not d.addresses:
        parts.append("no address known")
    if d.last_dial is not None and d.last_dial.error:
        parts.append(f"last dial {_ago(d.last_dial.at, now)}: {d.last_dial.error}")
    if d.next_dial is not None:
        parts.append(f"next dial in {max(0.0, d.next_dial - now):.0f}s")
    return "; ".join(parts)


def table(node: Node) -> str:
    """The peers table of ``node``, as text."""
    now = time.time()
    m = node.metrics()
    head = (
        f"node {node.key.fingerprint}  peers connected {m.peers_connected}  "
        f"connections {m.connections_open}  calls in/out {m.calls_in}/{m.calls_out}  "
        f"handshakes ok/untrusted/failed {m.handshakes_ok}/{m.handshakes_untrusted}/"
        f"{m.handshakes_failed + m.handshakes_timeout}"
    )
    rows = [("PEER", "STATE", "ADDRESS", "RTT", "IN", "OUT", "LAST SEEN", "WHY NOT CONNECTED")]
    for p in node.peers():
        d = node.peer(p.key)
        if d is None:
            continue
        name = d.label or d.key.fingerprint
        rtt = f"{d.rtt * 1000:.1f}ms" if d.rtt is not None else "-"
        rows.append(
            (
                name,
                d.state,
                d.address or "-",
                rtt,
                _bytes(d.stats.get("bytes_in", 0)),
                _bytes(d.stats.get("bytes_out", 0)),
                _ago(d.last_seen, now),
                _why(d, now),
            )
        )
    if len(rows) == 1:
        return head + "\n(no known peers: trust one with `peernet trust add KEY`)"
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = [head]
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        lines.append("  ".join(cells + [r[-1]]).rstrip())
    return "\n".join(lines)


def show(node: Node, every: Optional[float], count: Optional[int], first_wait: float = 0.0) -> None:
    """Prints the table after ``first_wait`` s, then every ``every`` s (``None``: once)
    until ``count`` tables were printed (``None``: until Ctrl-C). On a terminal each
    table replaces the previous one."""
    tty = sys.stdout.isatty()
    if first_wait > 0:
        time.sleep(first_wait)
    shown = 0
    while True:
        text = table(node)
        if tty and every is not None:
            text = "\x1b[H\x1b[2J" + text
        elif shown:
            text = "\n" + text
        print(text, flush=True)
        shown += 1
        if every is None or (count is not None and shown >= count):
            return
        time.sleep(every)


def cmd_status(args: argparse.Namespace, discovery: Optional[UdpDiscovery]) -> int:
    """``peernet status``: a short-lived node on a data directory no node runs on."""
    if args.count is not None and args.count < 1:
        raise ValueError("--count must be at least 1")
    if args.watch is not None and args.watch <= 0:
        raise ValueError("--watch must be a positive number of seconds")
    with Node(args.dir, listen=None, discovery=discovery,
              mdns=_cli_mdns.choose(args, discovery)) as n:
        try:
            show(n, args.watch, args.count, first_wait=args.wait)
        except KeyboardInterrupt:
            pass
    return 0
