"""``peernet invite`` and ``peernet join``: pair two machines with a short code, a
ticket or its QR code, instead of copying 64 hex digits."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Callable, Optional

from ._api import Node, UdpDiscovery
from ._errors import PeerNetError, Timeout
from ._pairing import Invite, Paired
from .chat import _out


def _discovery(args: argparse.Namespace) -> Optional[UdpDiscovery]:
    """The rendezvous settings: only when the user changed them (the default is the
    discovery port 4040 on every interface's directed broadcast)."""
    if args.discovery_port == 4040 and not args.broadcast:
        return None
    return UdpDiscovery(port=args.discovery_port, interval=5.0, broadcast=args.broadcast or None)


def _show_paired(p: Paired, verb: str) -> None:
    _out(f"{verb} {p.name or '(no name)'}: key {p.key.hex()} (fingerprint {p.key.fingerprint})")
    _out(f"verification words: {p.sas}  (the other screen shows the same words)")
    _out("both machines now trust each other; `peernet trust list` shows it")


def cmd_invite(args: argparse.Namespace) -> int:
    with Node(args.dir, listen=args.listen, discovery=_discovery(args)) as n:
        with n.invite(expiry=args.expiry, name=args.name, code=not args.no_code) as inv:
            left = f"{args.expiry:g} s" if args.expiry < 120 else f"{round(args.expiry / 60)} min"
            if inv.code:
                _out(f"code:   {inv.code}")
                _out(f"        on the other machine: peernet join {inv.code}")
            _out(f"ticket: {inv.ticket}")
            if not args.no_qr:
                _out(inv.qr(invert=args.invert_qr))
            _out(f"waiting up to {left} for the other machine (Ctrl-C to cancel); "
                 "the code works once, the ticket until it expires or is used")
            sys.stdout.flush()
            deadline = time.monotonic() + args.expiry + 1
            while True:
                try:
                    p = inv.wait(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
                except Timeout:
                    if time.monotonic() > deadline:
                        raise
                    continue
                _show_paired(p, "paired with")
                return 0


def cmd_join(args: argparse.Namespace) -> int:
    with Node(args.dir, listen=args.listen, discovery=_discovery(args)) as n:
        p = n.join(args.code_or_ticket, timeout=args.timeout, name=args.name)
        _show_paired(p, "joined")
    return 0


def add_commands(make: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Adds ``invite`` and ``join`` through the CLI's ``command(name, help)`` factory."""
    pair_opts = []
    inv = make("invite", "pair with another machine: show a short code, a ticket and its QR "
               "code, and wait until the other machine joins")
    inv.add_argument("--expiry", type=float, default=600.0, metavar="SECONDS",
                     help="how long the invite is valid")
    inv.add_argument("--no-code", action="store_true",
                     help="offer only the ticket (no LAN rendezvous for a short code)")
    inv.add_argument("--no-qr", action="store_true", help="do not print the QR code")
    inv.add_argument("--invert-qr", action="store_true",
                     help="QR code for terminals with light text on a dark background")
    pair_opts.append(inv)
    j = make("join", "pair with an invite: give its short code (7-copper-violin) or its "
             "ticket (peernet1-...)")
    j.add_argument("code_or_ticket", metavar="CODE|TICKET",
                   help="the short code or ticket `peernet invite` shows on the other machine")
    j.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="seconds to find the inviter and pair")
    pair_opts.append(j)
    for sp in pair_opts:
        sp.add_argument("--name", default=None,
                        help="what the other machine will call this one (default: the host name)")
        sp.add_argument("--listen", default="0.0.0.0:0", metavar="IP:PORT",
                        help="this node's TCP address (the pairing listener uses its IP)")
        sp.add_argument("--discovery-port", type=int, default=4040, metavar="PORT",
                        help="UDP port of the short-code rendezvous")
        sp.add_argument("--broadcast", action="append", metavar="IP",
                        help="where the short code is announced (repeatable; default: every "
                        "interface's directed broadcast)")


def chat_command(n: Node, name: str, text: str, invites: list[Invite]) -> bool:
    """``/invite`` and ``/join CODE|TICKET`` inside ``peernet chat``: pairing by code or
    ticket instead of comparing fingerprints. True when ``text`` was one of them."""
    if text == "/invite":
        inv = n.invite(name=name)
        invites.append(inv)
        _out(f"* invite open for 10 min: the other side types /join {inv.code}")
        _out(f"  (or /join {inv.ticket})")

        def wait() -> None:
            try:
                p = inv.wait(timeout=max(1.0, inv.expires_at - time.time() + 1))
                _out(f"* paired with {p.name} (fingerprint {p.key.fingerprint}); "
                     f"verification words: {p.sas}")
            except (PeerNetError, ValueError) as e:
                _out(f"* invite ended: {e}")

        threading.Thread(target=wait, name="peernet-chat-invite", daemon=True).start()
        return True
    if text.startswith("/join"):
        what = text[len("/join"):].strip()
        if not what:
            _out("! /join needs the code or ticket the other side's /invite showed")
            return True

        def join() -> None:
            try:
                p = n.join(what, name=name)
                _out(f"* paired with {p.name} (fingerprint {p.key.fingerprint}); "
                     f"verification words: {p.sas}")
            except (PeerNetError, ValueError, OSError) as e:
                _out(f"! join: {e}")

        threading.Thread(target=join, name="peernet-chat-join", daemon=True).start()
        return True
    return False
