"""``peernet chat``: a LAN walkie-talkie with discovery and pairing.

Pairing is by code: ``/invite`` shows a one-time short code that the other side types
as ``/join CODE`` (see ``peernet invite``). A discovered peer is also offered on screen
with its fingerprint, and only ``/trust <fingerprint>`` (or its 64 hex digits) trusts
it — never a bare "y", and never a chat line. An offer ends when it is accepted, after
``--pair-timeout`` seconds (60), or when the peer stops announcing itself, so an answer
can only ever apply to an offer that is on screen and current.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Union

from . import _cli_mdns
from ._api import Event, Key, Node, UdpDiscovery
from ._errors import PeerNetError
from ._pairing import Invite

#: Seconds a pairing offer stays open.
PAIR_TIMEOUT = 60.0

HELP = "commands: /invite, /join CODE, /trust FINGERPRINT, /pending, /scan, /peers, /quit"
#: The handler a chat answers with its name (the peer keeps it as our trust label).
NAME_HANDLER = "chat.name"
#: Longest name kept from a peer.
MAX_NAME = 64

# One lock for every line the command line writes, output and log alike: a line is
# written whole (one write, then flush) while holding it, so a log record from another
# thread never starts in the middle of an output line, even when stdout and stderr are
# the same terminal.
_write_lock = threading.RLock()


def _out(*parts: object) -> None:
    line = " ".join(str(p) for p in parts) + "\n"
    with _write_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


class _LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A log handler that writes whole lines under the output lock."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        with _write_lock:
            sys.stdout.flush()
            self.stream.write(line)
            self.stream.flush()


def install_log_handler(level: int = logging.DEBUG) -> logging.Handler:
    """Sends the library's log (logger ``peernet``) to stderr, one whole line per record."""
    h = _LineHandler(sys.stderr)
    h.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(h)
    root.setLevel(level)
    return h


def who(n: Node, key: Key) -> str:
    """A peer as the user knows it: its trust label (if any) and its fingerprint."""
    label = next((e.label for e in n.trusted() if e.key == key and e.label), "")
    return f"{label} (fingerprint {key.fingerprint})" if label else f"fingerprint {key.fingerprint}"


def _clean_name(raw: bytes) -> str:
    text = raw[: MAX_NAME * 4].decode("utf-8", "replace")
    return "".join(c for c in text if c.isprintable()).strip()[:MAX_NAME]


def default_listen(broadcast: Optional[list[str]]) -> str:
    """Loopback only when every broadcast address is a loopback one (a chat between
    programs on this machine is then not reachable from the network), else every interface."""
    def loopback(b: str) -> bool:
        host = b.rsplit(":", 1)[0] if b.count(":") == 1 else b
        try:
            return ipaddress.ip_address(host.strip("[]")).is_loopback
        except ValueError:
            return False

    if broadcast and all(loopback(b) for b in broadcast):
        return "127.0.0.1:0"
    return "[::]:0"


def _show(body: bytes) -> str:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + body.hex()
    return text if text.isprintable() or text == "" else repr(text)


@dataclass(frozen=True)
class Offer:
    """A pairing offer on screen."""

    key: Key
    address: Optional[str]
    shown_at: float
    """``time.monotonic()`` when it was shown."""


class Pairing:
    """The open pairing offers: at most one per peer, each ending when accepted, after
    ``ttl`` seconds, or when the peer is lost. Thread-safe."""

    def __init__(self, ttl: float = PAIR_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._offers: dict[Key, Offer] = {}
        # Peers offered since they were last announced anew: not offered again until
        # they are lost (or the user asks with /scan).
        self._seen: set[Key] = set()
        #: Invites opened with /invite (closed when the chat ends).
        self.invites: list[Invite] = []

    def offer(self, key: Key, address: Optional[str]) -> Optional[Offer]:
        """Opens an offer for ``key``; None if it has one or had one already."""
        with self._lock:
            if key in self._seen:
                return None
            self._seen.add(key)
            o = Offer(key, address, self.clock())
            self._offers[key] = o
            return o

    def withdraw(self, key: Key) -> Optional[Offer]:
        """The peer stopped announcing itself: its offer (if open) ends, and it may be
        offered again when it comes back."""
        with self._lock:
            self._seen.discard(key)
            return self._offers.pop(key, None)

    def expire(self) -> list[Offer]:
        """Ends and returns the offers older than ``ttl``."""
        now = self.clock()
        with self._lock:
            old = [o for o in self._offers.values() if now - o.shown_at >= self.ttl]
            for o in old:
                del self._offers[o.key]
            return old

    def rescan(self) -> None:
        """Peers without an open offer may be offered again."""
        with self._lock:
            self._seen = set(self._offers)

    def pending(self) -> list[Offer]:
        """The open offers, oldest first (expired ones are gone)."""
        self.expire()
        with self._lock:
            return sorted(self._offers.values(), key=lambda o: o.shown_at)

    def accept(self, name: str) -> Union[Offer, str]:
        """Ends and returns the open offer that ``name`` (a fingerprint or the 64 hex
        digits of the key) names exactly, or a message saying why there is none."""
        want = name.strip().lower()
        if not want:
            return "say which peer: /trust FINGERPRINT (the one shown in its offer)"
        self.expire()
        with self._lock:
            hits = [o for o in self._offers.values() if want in (o.key.fingerprint, o.key.hex())]
            if len(hits) > 1:
                return f"{want} names {len(hits)} offers; type the peer's 64 hex digits instead"
            if not hits:
                open_ = ", ".join(o.key.fingerprint for o in self._offers.values()) or "none"
                return f"no open pairing offer from {want} (open offers: {open_})"
            del self._offers[hits[0].key]
            return hits[0]


def cmd_chat(args: argparse.Namespace) -> int:
    name = args.name or os.environ.get("USER") or "anon"
    disc = UdpDiscovery(port=args.port, interval=args.interval, broadcast=args.broadcast or None)
    pairing = Pairing(ttl=args.pair_timeout)
    listen = args.listen or default_listen(args.broadcast)
    with Node(args.dir, listen=listen, discovery=disc, mdns=_cli_mdns.choose(args, disc)) as n:
        _out(f"you are {name}, fingerprint {n.key.fingerprint} (key {n.key.hex()}); "
             f"listening on {n.address}")
        _out(f"type a message and Enter to send to every connected peer; {HELP}")

        @n.expose("chat")
        def on_chat(peer: Key, body: bytes) -> None:
            _out(f"[{who(n, peer)}] {_show(body)}")

        n.expose(NAME_HANDLER, lambda peer, body: name.encode("utf-8"))

        def learn_name(key: Key) -> None:
            """Asks a newly connected peer its chat name and keeps it as its trust label
            (unless the user gave it one)."""
            try:
                theirs = _clean_name(n.call(key, NAME_HANDLER, b"", timeout=5.0))
                entry = next((e for e in n.trusted() if e.key == key), None)
                if theirs and entry is not None and not entry.label:
                    n.trust(key, label=theirs)
            except PeerNetError:
                pass  # an older chat, or it left: the fingerprint is shown instead
            _out(f"* connected to {who(n, key)}")

        def offer(key: Key, address: Optional[str]) -> None:
            """Offers pairing with a discovered peer that is not trusted yet."""
            if any(e.key == key for e in n.trusted()):
                return
            if args.yes:
                if pairing.offer(key, address) is not None:
                    pairing.accept(key.hex())
                    n.trust(key)
                    _out(f"* paired with fingerprint {key.fingerprint} at {address} (--yes)")
                return
            if pairing.offer(key, address) is None:
                return
            _out(
                f"? pair with fingerprint {key.fingerprint} at {address}? Compare it with "
                f"the one their screen shows as theirs (your fingerprint is {n.key.fingerprint}); "
                f"to accept, type: /trust {key.fingerprint}"
            )

        @n.on_event
        def on_event(ev: Event) -> None:
            if ev.key is None:
                return
            if ev.kind == "connected":
                # Not on the event thread: the call waits for the peer's reply.
                threading.Thread(target=learn_name, args=(ev.key,), daemon=True).start()
            elif ev.kind == "disconnected":
                _out(f"* {who(n, ev.key)} left")
            elif ev.kind == "discovered":
                offer(ev.key, ev.address)
            elif ev.kind == "lost" and pairing.withdraw(ev.key) is not None:
                _out(f"* pairing offer from fingerprint {ev.key.fingerprint} withdrawn: "
                     "it stopped announcing itself")

        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(0.25):
                for o in pairing.expire():
                    _out(
                        f"* pairing offer from fingerprint {o.key.fingerprint} expired after "
                        f"{pairing.ttl:g} s (/scan offers the peers announcing now)"
                    )
                # A peer heard before the callback was set has no event of its own: the
                # peer table still lists it.
                for p in n.peers():
                    if not p.trusted and p.address:
                        offer(p.key, p.address)

        ticker = threading.Thread(target=tick, name="peernet-chat-tick", daemon=True)
        ticker.start()
        try:
            for line in sys.stdin:
                if not command(n, pairing, name, line.rstrip("\n")):
                    break
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            ticker.join()
            for inv in pairing.invites:
                inv.close()
    return 0


def command(n: Node, pairing: Pairing, name: str, text: str) -> bool:
    """Handles one input line; False ends the chat."""
    if text == "/quit":
        return False
    if text == "/peers":
        peers = n.peers()
        for p in peers:
            label = f"{p.label} " if p.label else ""
            trusted = "trusted" if p.trusted else "not trusted"
            _out(f"  {label}fingerprint {p.key.fingerprint} {p.state} {trusted} "
                 f"{'address ' + p.address if p.address else ''}".rstrip())
        if not peers:
            _out("  (no peers known yet)")
        return True
    if text == "/pending":
        offers = pairing.pending()
        for o in offers:
            _out(f"  offer from fingerprint {o.key.fingerprint} at {o.address}")
        if not offers:
            _out("  (no open pairing offers)")
        return True
    if text == "/scan":
        pairing.rescan()
        return True
    from ._cli_pair import chat_command  # (it imports this module's _out)

    if chat_command(n, name, text, pairing.invites):
        return True
    if text == "/trust" or text.startswith("/trust "):
        got = pairing.accept(text[len("/trust"):])
        if isinstance(got, str):
            _out(f"! {got}")
            return True
        n.trust(got.key)
        _out(f"* paired with fingerprint {got.key.fingerprint}")
        return True
    if text.startswith("/"):
        _out(f"! unknown command {text.split()[0]}; {HELP}")
        return True
    if text.strip().lower() in ("y", "yes", "n", "no") and pairing.pending():
        _out(f'! "{text.strip()}" is not an answer: to pair, type /trust FINGERPRINT '
             "with the fingerprint of the offer you mean")
        return True
    if not text:
        return True
    sent = 0
    for p in n.peers():
        if p.state == "connected":
            try:
                n.send(p.key, "chat", f"{name}: {text}".encode())
                sent += 1
            except PeerNetError as e:
                _out(f"! {who(n, p.key)}: {e}")
    if not sent:
        _out("! nobody connected yet")
    return True
