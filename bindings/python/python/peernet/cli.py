"""The ``peernet`` command line: id, trust, serve, status, call, chat, demo."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from . import _peernet
from ._api import Event, Key, Node, UdpDiscovery
from ._errors import Busy, PeerNetError
from .chat import PAIR_TIMEOUT, _out, _show, cmd_chat

DEFAULT_DIR = os.environ.get("PEERNET_DIR") or str(Path.home() / ".peernet")


def _discovery(args: argparse.Namespace) -> Optional[UdpDiscovery]:
    if not getattr(args, "discovery", False):
        return None
    return UdpDiscovery(
        port=args.discovery_port,
        interval=args.discovery_interval,
        broadcast=args.broadcast or None,
    )


# Offline commands (id, trust) open the data directory like a node does, taking its
# lock: while a node runs on it they fail with the message below and change nothing,
# instead of writing a trust file the running node would overwrite from memory.
def busy_message(cmd: str, e: Busy, data_dir: str) -> str:
    """What to tell the user when another process holds the data directory."""
    who = f"a node (pid {e.pid})" if e.pid is not None else "another PeerNet process"
    where = e.path or os.path.abspath(data_dir)
    if cmd == "trust":
        return (
            f"peernet trust: {who} holds {where}; stop it and run this again, or make the "
            f"change through the running node (Node.trust / Node.untrust / Node.trusted in "
            f"its program). Nothing was changed: offline commands take the node's lock"
        )
    if cmd == "status":
        return (
            f"peernet status: {who} holds {where}; a running node prints its own table: "
            f"start it as `peernet serve --status-every SECONDS` (this command only reads "
            f"a data directory no node runs on, with a short-lived node of its own)"
        )
    if cmd == "id":
        return (
            f"peernet id: {who} holds {where}; stop it and run this again, or read the key "
            f"from the running node (`peernet serve` prints it; Node.key in a program)"
        )
    return (
        f"peernet {cmd}: {who} already runs on {where}; stop it, or give this one its own "
        f"data directory (--dir DIR or PEERNET_DIR)"
    )


def cmd_id(args: argparse.Namespace) -> int:
    with Node(args.dir, listen=None) as n:
        _out(f"key          {n.key.hex()}")
        _out(f"fingerprint  {n.key.fingerprint}")
        _out(f"data dir     {os.path.abspath(args.dir)}")
    return 0


def cmd_trust(args: argparse.Namespace) -> int:
    with Node(args.dir, listen=None) as n:
        if args.trust_cmd == "add":
            key = Key.from_hex(args.key)
            n.trust(key, label=args.label)
            if args.rpc:
                n.grant_rpc(key)
            _out(f"trusted {key.fingerprint}" + (" (with RPC)" if args.rpc else ""))
        elif args.trust_cmd == "remove":
            key = Key.from_hex(args.key)
            if not n.untrust(key):
                _out(f"{key.fingerprint} was not trusted")
                return 1
            _out(f"untrusted {key.fingerprint}")
        else:
            entries = n.trusted()
            if not entries:
                _out("(no trusted peers)")
            for e in entries:
                added = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.added_at))
                rpc = " rpc" if e.rpc else ""
                _out(f"{e.key.hex()}  {e.key.fingerprint}  {added}{rpc}  {e.label}")
    return 0


def _wait_for_signal(duration: Optional[float]) -> None:
    stop = threading.Event()

    def on_term(signum: int, frame: object) -> None:
        stop.set()

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            stop.wait(0.2 if left is None else min(0.2, left))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old)


def cmd_serve(args: argparse.Namespace) -> int:
    with Node(args.dir, listen=args.listen, discovery=_discovery(args)) as n:
        for k in args.trust or []:
            n.trust(Key.from_hex(k))
        n.expose("echo", lambda peer, body: body)
        n.expose("ping", lambda peer, body: b"pong")

        @n.on_event
        def show(ev: Event) -> None:
            who = ev.key.fingerprint if ev.key else ""
            _out(f"event {ev.kind} {who} {ev.address or ''} {ev.reason}".rstrip())

        _out(f"key {n.key.hex()}")
        _out(f"fingerprint {n.key.fingerprint}")
        _out(f"listening {n.address}")
        _out("serving echo, ping (Ctrl-C to stop)")
        if args.status_every:
            _serve_with_status(n, args.status_every, args.duration)
        else:
            _wait_for_signal(args.duration)
    return 0


def _serve_with_status(n: Node, every: float, duration: Optional[float]) -> None:
    """Prints the peers table every ``every`` s until SIGTERM, Ctrl-C or ``duration``."""
    from .status import table

    stop = threading.Event()
    old = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while True:
            left = every if deadline is None else min(every, deadline - time.monotonic())
            if left <= 0 or stop.wait(left):
                break
            _out(table(n))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old)


def cmd_call(args: argparse.Namespace) -> int:
    key = Key.from_hex(args.key)
    with Node(args.dir, listen=None) as n:
        if args.trust:
            n.trust(key)
        if args.addr:
            n.connect(key, args.addr, timeout=args.timeout)
        else:
            n.wait_connected(key, timeout=args.timeout)
        reply = n.call(key, args.name, args.data.encode("utf-8"), timeout=args.timeout)
        _out(_show(reply))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the ``peernet`` command."""
    p = argparse.ArgumentParser(prog="peernet", description="PeerNet: default-deny peer-to-peer messaging")
    p.add_argument("--dir", default=DEFAULT_DIR, help=f"data dir (identity + trust store), default {DEFAULT_DIR}")
    p.add_argument("-v", "--verbose", action="store_true", help="show the library's log")
    p.add_argument("--version", action="version", version=f"peernet {_peernet.__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    sub.add_parser("id", help="create (if needed) and show this identity")

    t = sub.add_parser("trust", help="manage the trust store")
    tsub = t.add_subparsers(dest="trust_cmd", required=True)
    ta = tsub.add_parser("add", help="trust a key")
    ta.add_argument("key", help="64 hex digits")
    ta.add_argument("--label", default=None)
    ta.add_argument("--rpc", action="store_true", help="also grant RPC rights")
    tr = tsub.add_parser("remove", help="untrust a key")
    tr.add_argument("key")
    tsub.add_parser("list", help="list trusted keys")

    def discovery_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--discovery", action="store_true", help="announce and listen on UDP")
        sp.add_argument("--discovery-port", type=int, default=4040)
        sp.add_argument("--discovery-interval", type=float, default=5.0)
        sp.add_argument("--broadcast", action="append", help="broadcast address (repeatable)")

    s = sub.add_parser("serve", help="serve echo and ping handlers")
    s.add_argument("--listen", default="0.0.0.0:7100")
    s.add_argument("--trust", action="append", help="trust this key first (repeatable)")
    s.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    s.add_argument("--status-every", type=float, default=None, metavar="SECONDS", help="print the peers table every SECONDS")
    discovery_opts(s)

    st = sub.add_parser(
        "status",
        help="peers table (state, address, RTT, bytes, last seen, why not connected)",
        description="Starts a short-lived node on --dir (which no node may be running on), "
        "dials the trusted peers at their remembered addresses, and prints the peers table. "
        "For a running node use `peernet serve --status-every SECONDS`.",
    )
    st.add_argument("--wait", type=float, default=2.0, help="seconds to let dials finish before the first table")
    st.add_argument("--watch", type=float, default=None, metavar="SECONDS", help="refresh every SECONDS")
    st.add_argument("--count", type=int, default=None, metavar="N", help="with --watch: stop after N tables")
    discovery_opts(st)

    c = sub.add_parser("call", help="call a handler on a peer and print the reply")
    c.add_argument("key")
    c.add_argument("name")
    c.add_argument("data")
    c.add_argument("--addr", help="HOST:PORT to dial")
    c.add_argument("--timeout", type=float, default=5.0)
    c.add_argument("--trust", action="store_true", help="trust KEY first")

    ch = sub.add_parser("chat", help="LAN walkie-talkie with discovery and pairing")
    ch.add_argument("--name", default=None)
    ch.add_argument("--listen", default="0.0.0.0:0")
    ch.add_argument("--port", type=int, default=4040, help="discovery UDP port")
    ch.add_argument("--interval", type=float, default=2.0, help="announcement interval")
    ch.add_argument(
        "--broadcast",
        action="append",
        help="broadcast address (repeatable; default: every interface's directed broadcast)",
    )
    ch.add_argument(
        "--pair-timeout",
        type=float,
        default=PAIR_TIMEOUT,
        help=f"seconds a pairing offer stays open (default {PAIR_TIMEOUT:g})",
    )
    ch.add_argument(
        "--yes",
        action="store_true",
        help="trust everyone discovered, no offer (any announcement, forged or not: for tests)",
    )

    d = sub.add_parser("demo", help="several nodes on loopback showing every feature")
    d.add_argument("--quiet-log", action="store_true", help=argparse.SUPPRESS)

    args = p.parse_args(argv)
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.cmd == "id":
            return cmd_id(args)
        if args.cmd == "trust":
            return cmd_trust(args)
        if args.cmd == "serve":
            return cmd_serve(args)
        if args.cmd == "call":
            return cmd_call(args)
        if args.cmd == "status":
            from .status import cmd_status

            return cmd_status(args, _discovery(args))
        if args.cmd == "chat":
            return cmd_chat(args)
        if args.cmd == "demo":
            from .demo import run

            return run()
    except Busy as e:
        print(busy_message(args.cmd, e, args.dir), file=sys.stderr)
        return 1
    except (PeerNetError, ValueError, OSError) as e:
        print(f"peernet {args.cmd}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2
