"""The ``peernet`` command line: id, trust, invite, join, serve, status, call, send-file, chat,
demo."""

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
from ._api import data_path
from . import _cli_files, _cli_mdns
from ._cli_call import cmd_call
from ._cli_pair import add_commands as add_pair_commands, cmd_invite, cmd_join
from .chat import PAIR_TIMEOUT, _out, _show, cmd_chat, install_log_handler, who

#: The data directory when neither --dir nor PEERNET_DIR is given.
HOME_DIR = str(Path.home() / ".peernet")
DEFAULT_DIR = os.environ.get("PEERNET_DIR") or HOME_DIR

#: Exit statuses (docs/cli.md).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


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
    where = e.path or os.path.abspath(data_path(data_dir))
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
        _out(f"data dir     {os.path.abspath(data_path(args.dir))}")
    return 0


def cmd_trust(args: argparse.Namespace) -> int:
    # auto_connect off: an offline command attaching an address must not dial it.
    with Node(args.dir, listen=None, auto_connect=False) as n:
        if args.trust_cmd == "add":
            key = Key.from_hex(args.key)
            n.trust(key, label=args.label)
            if args.rpc:
                n.grant_rpc(key)
            stored = [n.add_address(key, a) for a in args.addr or []]
            _out(f"trusted key {key.hex()} (fingerprint {key.fingerprint})"
                 + (" with RPC" if args.rpc else "")
                 + (f", addresses {', '.join(stored)}" if stored else ""))
        elif args.trust_cmd == "remove":
            key = Key.from_hex(args.key)
            if not n.untrust(key):
                _out(f"key {key.hex()} (fingerprint {key.fingerprint}) was not trusted")
                return 1
            _out(f"untrusted key {key.hex()} (fingerprint {key.fingerprint})")
        else:
            entries = n.trusted()
            if not entries:
                _out("(no trusted peers)")
            for e in entries:
                added = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.added_at))
                rpc = " rpc" if e.rpc else ""
                _out(f"key {e.key.hex()}  fingerprint {e.key.fingerprint}  added {added}{rpc}"
                     + (f"  label {e.label}" if e.label else "")
                     + (f"  addr {','.join(e.manual_addresses)}" if e.manual_addresses else "")
                     + (f"  remembered {','.join(e.addresses)}" if e.addresses else ""))
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
    disc = _discovery(args)
    with Node(args.dir, listen=args.listen, discovery=disc, mdns=_cli_mdns.choose(args, disc)) as n:
        for k in args.trust or []:
            n.trust(Key.from_hex(k))
        n.expose("echo", lambda peer, body: body)
        n.expose("ping", lambda peer, body: b"pong")

        @n.on_event
        def show(ev: Event) -> None:
            if ev.kind == "refused" and ev.key is not None:
                _out(
                    f"refused untrusted client key {ev.key.hex()} (fingerprint "
                    f"{ev.key.fingerprint}) from {ev.address or '?'}; to let it in, stop "
                    f"this server and run: peernet --dir {args.dir} trust add {ev.key.hex()}"
                    f" (or restart it with --trust {ev.key.hex()})"
                )
                return
            peer = who(n, ev.key) if ev.key else ""
            where = f"address {ev.address}" if ev.address else ""
            _out(" ".join(x for x in (f"event {ev.kind}", peer, where, ev.reason) if x))

        _out(f"key {n.key.hex()}")
        _out(f"fingerprint {n.key.fingerprint}")
        _out(f"listening {n.address}")
        inbox = _cli_files.serve_files(n, args, lambda k: who(n, k))
        if inbox:
            _out(f"receiving files into {inbox}")
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




EPILOG = (
    "environment: PEERNET_DIR is the data directory when --dir is not given "
    f"(otherwise {HOME_DIR}). --dir may come before or after the subcommand. "
    "exit status: 0 ok, 1 the command failed (the message says why), 2 usage error, "
    "130 interrupted. Manual: docs/cli.md."
)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default after its description."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, argparse.SUPPRESS, False):
            return text
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            return text
        return text + " (default: %(default)s)"


def _dir_option(p: argparse.ArgumentParser, top: bool) -> None:
    # The subcommands' copy has no default of its own, so `peernet --dir X id` is not
    # overwritten by the subcommand's default; `peernet id --dir X` works too.
    p.add_argument(
        "--dir",
        type=data_path,
        default=DEFAULT_DIR if top else argparse.SUPPRESS,
        metavar="DIR",
        help="data directory (identity key + trust store); ~ is expanded; "
        f"default: $PEERNET_DIR, else {HOME_DIR}" + (f" (now {DEFAULT_DIR})" if top else ""),
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``peernet`` argument parser (every option with a description and default)."""
    p = argparse.ArgumentParser(
        prog="peernet",
        description="PeerNet: default-deny peer-to-peer messaging",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    _dir_option(p, True)
    p.add_argument("-v", "--verbose", action="store_true", help="show the library's log on stderr")
    p.add_argument("--version", action="version", version=f"peernet {_peernet.__version__}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help, epilog=EPILOG, formatter_class=_Formatter)
        _dir_option(sp, False)
        return sp

    command("id", "create this identity if needed and show its key and fingerprint")

    t = command("trust", "manage the trust store (while no node runs on the directory)")
    tsub = t.add_subparsers(dest="trust_cmd", required=True, metavar="ACTION")

    def trust_action(name: str, help: str) -> argparse.ArgumentParser:
        sp = tsub.add_parser(name, help=help, description=help, epilog=EPILOG, formatter_class=_Formatter)
        _dir_option(sp, False)
        return sp

    ta = trust_action("add", "trust a key")
    ta.add_argument("key", help="the peer's key: 64 hex digits (`peernet id` on the peer prints it)")
    ta.add_argument("--label", default=None, help="a name for the key, shown in lists (default: none)")
    ta.add_argument("--rpc", action="store_true", help="also grant RPC rights (remote code execution: "
                    "the peer may call functions of the node's rpc_modules)")
    ta.add_argument("--addr", action="append", metavar="HOST:PORT",
                    help="where the peer listens, dialed first: 192.168.1.20:7100, [2001:db8::1]:7100, "
                    "[fe80::1%%eth0]:7100 or laptop.example:7100 (a name is resolved at every dial; repeatable, at most 4; "
                    "for routed links and VPNs where discovery does not reach; default: none)")
    tr = trust_action("remove", "untrust a key")
    tr.add_argument("key", help="the key to remove: 64 hex digits")
    trust_action("list", "list the trusted keys")
    add_pair_commands(command)

    def discovery_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--discovery", action="store_true",
                        help="announce this node and listen for others on UDP (default: off)")
        sp.add_argument("--discovery-port", type=int, default=4040, metavar="PORT",
                        help="UDP port of discovery announcements")
        sp.add_argument("--discovery-interval", type=float, default=5.0, metavar="SECONDS",
                        help="seconds between announcements")
        sp.add_argument("--broadcast", action="append", metavar="IP",
                        help="broadcast address to announce to (repeatable; default: the directed "
                        "broadcast address of every IPv4 interface)")
        _cli_mdns.add_options(sp)

    s = command("serve", "serve the echo and ping handlers until Ctrl-C or SIGTERM")
    s.add_argument("--listen", default="[::]:7100", metavar="IP:PORT",
                   help="TCP address to accept connections on ([::] is dual stack: IPv4 and IPv6; "
                   "0.0.0.0 where the host has no IPv6)")
    s.add_argument("--trust", action="append", metavar="KEY",
                   help="trust this key (64 hex digits) first (repeatable; default: none)")
    s.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many seconds (default: run until stopped)")
    s.add_argument("--status-every", type=float, default=None, metavar="SECONDS",
                   help="print the peers table every SECONDS (default: never)")
    _cli_files.add_serve_options(s)
    discovery_opts(s)

    st = command(
        "status",
        "peers table (state, address, RTT, bytes, last seen, why not connected) from a "
        "short-lived node on --dir, which no node may be running on; for a running node "
        "use `peernet serve --status-every SECONDS`",
    )
    st.add_argument("--wait", type=float, default=2.0, metavar="SECONDS",
                    help="seconds to let dials finish before the first table")
    st.add_argument("--watch", type=float, default=None, metavar="SECONDS",
                    help="refresh every SECONDS (default: print once)")
    st.add_argument("--count", type=int, default=None, metavar="N",
                    help="with --watch: stop after N tables (default: until Ctrl-C)")
    discovery_opts(st)

    c = command("call", "call a handler on a peer and print the reply")
    c.add_argument("key", help="the peer's key: 64 hex digits")
    c.add_argument("name", help="the handler to call (`peernet serve` has echo and ping)")
    c.add_argument("data", help="the request body, sent as UTF-8 text")
    c.add_argument("--addr", metavar="IP:PORT",
                   help="the peer's TCP address (default: find it by UDP discovery)")
    c.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                   help="seconds to wait for the connection, then as much for the reply")
    c.add_argument("--trust", action="store_true",
                   help="trust KEY first (kept only if the call connects to that key)")
    c.add_argument("--discovery-port", type=int, default=4040, metavar="PORT",
                   help="UDP port to listen for the peer's announcements on, without --addr")
    c.add_argument("--broadcast", action="append", metavar="IP",
                   help="where this short-lived node announces itself, without --addr "
                   "(repeatable; default: every interface's directed broadcast)")
    _cli_mdns.add_options(c)

    _cli_files.add_send_file(command)

    ch = command("chat", "LAN walkie-talkie with discovery and pairing")
    ch.add_argument("--name", default=None,
                    help="your name, shown to peers and kept as their trust label for you "
                    "(default: $USER)")
    ch.add_argument("--listen", default=None, metavar="IP:PORT",
                    help="TCP address for peers to connect to (default: 127.0.0.1:0 when every "
                    "--broadcast is a loopback address, else 0.0.0.0:0)")
    ch.add_argument("--port", type=int, default=4040, help="discovery UDP port")
    ch.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                    help="seconds between announcements")
    ch.add_argument("--broadcast", action="append", metavar="IP",
                    help="broadcast address (repeatable; default: every interface's directed broadcast)")
    ch.add_argument("--pair-timeout", type=float, default=PAIR_TIMEOUT, metavar="SECONDS",
                    help="seconds a pairing offer stays open")
    ch.add_argument("--yes", action="store_true",
                    help="trust everyone discovered, no offer (any announcement, forged or not: for tests)")
    _cli_mdns.add_options(ch)

    d = command("demo", "several nodes in this process on loopback showing every feature")
    d.add_argument("--quiet-log", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the ``peernet`` command."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        install_log_handler()
    try:
        if args.cmd == "id":
            return cmd_id(args)
        if args.cmd == "trust":
            return cmd_trust(args)
        if args.cmd == "invite":
            return cmd_invite(args)
        if args.cmd == "join":
            return cmd_join(args)
        if args.cmd == "serve":
            return cmd_serve(args)
        if args.cmd == "call":
            return cmd_call(args)
        if args.cmd == "send-file":
            return _cli_files.cmd_send_file(args)
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
        return EXIT_FAILED
    except (PeerNetError, ValueError, OSError) as e:
        print(f"peernet {args.cmd}: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_USAGE
