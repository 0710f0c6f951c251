"""The CLI's mDNS default: on wherever the command's UDP discovery uses the default
targets (the real interfaces), off when ``--broadcast`` names targets (tests and the
demo stay on loopback: mDNS cannot be confined to it from its start); ``--mdns`` and
``--no-mdns`` say otherwise."""

from __future__ import annotations

import argparse
from typing import Optional

from ._api import Mdns, UdpDiscovery


def add_options(sp: argparse.ArgumentParser) -> None:
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--mdns", dest="mdns", action="store_true", default=None,
                   help="advertise and browse _peernet._tcp over mDNS (UDP 5353; default: on "
                   "when discovery runs without --broadcast)")
    g.add_argument("--no-mdns", dest="mdns", action="store_false",
                   help="no mDNS / DNS-SD")


def choose(args: argparse.Namespace, disc: Optional[UdpDiscovery]) -> Optional[Mdns]:
    """The mDNS setting of a command (see the module docs)."""
    want = getattr(args, "mdns", None)
    if want is None:
        want = disc is not None and not disc.broadcast
    return Mdns() if want else None
