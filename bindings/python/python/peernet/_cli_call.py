"""``peernet call``: connect to one peer, call one handler, print the reply — and when
that fails, say which of the possible reasons it was and what to run about it."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional

from . import _cli_mdns
from ._api import Event, Key, Node, UdpDiscovery
from ._errors import HandshakeFailed, PeerNetError, Timeout, UntrustedPeer
from .chat import _out, _show


class CallFailed(Exception):
    """The call could not be made; the message says why and what to do."""


def _fail(msg: str) -> int:
    print(f"peernet call: {msg}", file=sys.stderr, flush=True)
    return 1


def _discovered_address(n: Node, key: Key) -> Optional[str]:
    for p in n.peers():
        if p.key == key and p.address:
            return p.address
    return None


def _find(n: Node, key: Key, args: argparse.Namespace, deadline: float) -> str:
    """The peer's address from UDP discovery, waiting until ``deadline``."""

    def heard(ev: Event) -> bool:
        return ev.kind == "discovered" and ev.key == key

    while True:
        addr = _discovered_address(n, key)
        if addr:
            return addr
        left = deadline - time.monotonic()
        if left <= 0:
            raise CallFailed(
                f"timed out after {args.timeout:g} s: no address known for key {key.hex()} "
                f"(fingerprint {key.fingerprint}): nothing announced it on UDP port "
                f"{args.discovery_port}. Give its address with --addr IP:PORT (`peernet serve` "
                "prints `listening IP:PORT`), or start the server with --discovery; "
                "docs/networks.md lists what else to check"
            )
        try:
            ev = n.wait_event(heard, timeout=min(left, 0.5))
        except Timeout:
            continue
        if ev.address:
            return ev.address


def _connect(n: Node, key: Key, addr: str, args: argparse.Namespace, deadline: float) -> None:
    """Connects, turning each way of failing into the reason and the next step."""
    me = n.key
    try:
        n.connect(key, addr, timeout=max(0.0, deadline - time.monotonic()))
    except UntrustedPeer as e:
        text = str(e)
        if "refused" in text:
            raise CallFailed(
                f"refused by them: the peer at {addr} (key {key.hex()}) does not trust us. "
                f"Our key is {me.hex()} (fingerprint {me.fingerprint}); the server's "
                f"operator must run: peernet trust add {me.hex()}  (with the server "
                f"stopped; or restart it with `peernet serve --trust {me.hex()}`)"
            ) from None
        if "expected" in text:
            raise CallFailed(
                f"wrong key: the peer at {addr} is not key {key.hex()} ({text}); check the "
                "key you typed against what `peernet id` or `peernet serve` prints there"
            ) from None
        raise CallFailed(f"UntrustedPeer: {text}") from None
    except Timeout:
        raise CallFailed(
            f"timed out after {args.timeout:g} s connecting to {addr}: no handshake "
            "completed (is the server running there? a firewall dropping the TCP port? "
            f"if it refuses untrusted clients, its operator must run: peernet trust add "
            f"{me.hex()}). See docs/networks.md"
        ) from None
    except HandshakeFailed as e:
        raise CallFailed(f"HandshakeFailed with {addr}: {e}") from None
    except OSError as e:
        raise CallFailed(
            f"cannot reach {addr}: {e} (nothing listens there? check the server's "
            "`listening` line)"
        ) from None


def cmd_call(args: argparse.Namespace) -> int:
    key = Key.from_hex(args.key)
    disc = None
    if not args.addr:
        disc = UdpDiscovery(port=args.discovery_port, interval=5.0, broadcast=args.broadcast or None)
    with Node(args.dir, listen=None, discovery=disc, auto_connect=False,
              mdns=_cli_mdns.choose(args, disc)) as n:
        trusted = any(e.key == key for e in n.trusted())
        added = False
        if not trusted:
            if not args.trust:
                return _fail(
                    f"key {key.hex()} (fingerprint {key.fingerprint}) is not trusted by us, "
                    f"so no connection to it is possible. Add --trust, or run: peernet "
                    f"trust add {key.hex()}"
                )
            n.trust(key)
            added = True
        deadline = time.monotonic() + args.timeout
        try:
            addr = args.addr or _find(n, key, args, deadline)
            _connect(n, key, addr, args, deadline)
        except CallFailed as e:
            # The key was not confirmed (wrong key, nobody there): do not leave it trusted.
            # A refusal proves it right, so it stays for the next try.
            if added and not str(e).startswith("refused by them"):
                n.untrust(key)
            return _fail(str(e))
        except (PeerNetError, ValueError, OSError, KeyboardInterrupt):
            if added:
                n.untrust(key)
            raise
        reply = n.call(key, args.name, args.data.encode("utf-8"), timeout=args.timeout)
        _out(_show(reply))
    return 0
