"""``peernet send-file KEY PATH`` and the receiving side of ``peernet serve``
(``--receive-dir DIR``): file transfer from the command line, with a progress bar
(bytes, rate, ETA) when standard output is a terminal."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Optional, TextIO

from . import _cli_mdns
from ._api import Key, Node, UdpDiscovery
from ._cli_call import CallFailed, _connect, _find
from ._errors import PeerNetError
from ._files import DEFAULT_MAX_FILE_SIZE, ReceivedFile
from .chat import _out

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human(n: float) -> str:
    """A byte count for people: ``512 B``, ``1.5 MiB``."""
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} {_UNITS[-1]}"  # pragma: no cover


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class ProgressBar:
    """One terminal line redrawn in place: percentage, bar, bytes, rate, ETA. The rate
    counts only this run's bytes (not what the receiver already had)."""

    WIDTH = 24

    def __init__(self, out: TextIO, now: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.now = now
        self.start: Optional[float] = None
        self.first = 0
        self.drawn = False

    def line(self, done: int, total: int) -> str:
        """The bar's text for ``done`` of ``total`` bytes."""
        t = self.now()
        if self.start is None:
            self.start, self.first = t, done
        elapsed = t - self.start
        rate = (done - self.first) / elapsed if elapsed > 0 else 0.0
        frac = done / total if total else 1.0
        filled = int(frac * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        eta = _clock((total - done) / rate) if rate > 0 and done < total else "--:--"
        if done >= total:
            eta = _clock(elapsed)
        return (f"{frac * 100:5.1f}% [{bar}] {human(done)} / {human(total)}  "
                f"{human(rate)}/s  {'ETA' if done < total else 'took'} {eta}")

    def __call__(self, done: int, total: int) -> None:
        if total == 0 and done == 0 and self.start is None:
            return  # the receiver has not answered yet
        self.out.write("\r" + self.line(done, total) + "\x1b[K")
        self.out.flush()
        self.drawn = True

    def end(self) -> None:
        """Ends the bar's line (so the next output starts on its own)."""
        if self.drawn:
            self.out.write("\n")
            self.out.flush()
            self.drawn = False


def _fail(msg: str) -> int:
    print(f"peernet send-file: {msg}", file=sys.stderr, flush=True)
    return 1


def cmd_send_file(args: argparse.Namespace) -> int:
    key = Key.from_hex(args.key)
    path = os.path.expanduser(args.path)
    if not os.path.isfile(path):
        return _fail(f"{path} is not a file (give the path of the file to send)")
    disc = None
    if not args.addr:
        disc = UdpDiscovery(port=args.discovery_port, interval=5.0, broadcast=args.broadcast or None)
    with Node(args.dir, listen=None, discovery=disc, auto_connect=False,
              mdns=_cli_mdns.choose(args, disc)) as n:
        added = False
        if not any(e.key == key for e in n.trusted()):
            if not args.trust:
                return _fail(
                    f"key {key.hex()} (fingerprint {key.fingerprint}) is not trusted by us. "
                    f"Add --trust, or run: peernet trust add {key.hex()}"
                )
            n.trust(key)
            added = True
        deadline = time.monotonic() + args.timeout
        try:
            addr = args.addr or _find(n, key, args, deadline)
            _connect(n, key, addr, args, deadline)
        except CallFailed as e:
            if added and not str(e).startswith("refused by them"):
                n.untrust(key)
            return _fail(str(e))
        except (PeerNetError, ValueError, OSError, KeyboardInterrupt):
            if added:
                n.untrust(key)
            raise
        bar = ProgressBar(sys.stdout) if sys.stdout.isatty() else None
        try:
            r = n.send_file(key, path, name=args.name, progress=bar, timeout=args.timeout)
        finally:
            if bar is not None:
                bar.end()
        resumed = f", resumed at {human(r.resumed_from)}" if r.resumed_from else ""
        again = " (the receiver's partial copy was damaged: sent again whole)" if r.restarted else ""
        _out(f"sent {r.name}: {r.size} bytes, {r.sent} sent{resumed}{again}; sha256 {r.sha256}")
    return 0


def add_send_file(make: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Adds ``send-file`` through the CLI's ``command(name, help)`` factory."""
    c = make("send-file", "send a file to a peer running `peernet serve --receive-dir DIR`; "
             "an interrupted transfer resumes where it stopped")
    c.add_argument("key", help="the peer's key: 64 hex digits")
    c.add_argument("path", help="the file to send")
    c.add_argument("--name", default=None,
                   help="the name it gets there (default: the file's base name)")
    c.add_argument("--addr", metavar="IP:PORT",
                   help="the peer's TCP address (default: find it by UDP discovery)")
    c.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="seconds to wait for the connection, and for each answer of the receiver")
    c.add_argument("--trust", action="store_true",
                   help="trust KEY first (kept only if it connects to that key)")
    c.add_argument("--discovery-port", type=int, default=4040, metavar="PORT",
                   help="UDP port to listen for the peer's announcements on, without --addr")
    c.add_argument("--broadcast", action="append", metavar="IP",
                   help="where this short-lived node announces itself, without --addr "
                   "(repeatable; default: every interface's directed broadcast)")
    _cli_mdns.add_options(c)


def add_serve_options(s: argparse.ArgumentParser) -> None:
    """``peernet serve``'s file-receiving options."""
    s.add_argument("--receive-dir", default=None, metavar="DIR",
                   help="receive files from trusted peers (`peernet send-file`) into DIR "
                   "(default: receive none)")
    s.add_argument("--max-file-size", type=int, default=DEFAULT_MAX_FILE_SIZE, metavar="BYTES",
                   help="with --receive-dir: refuse larger files")
    s.add_argument("--overwrite", action="store_true",
                   help="with --receive-dir: a received file may replace one of the same name")


def serve_files(n: Node, args: argparse.Namespace, describe: Callable[[Key], str]) -> Optional[str]:
    """Starts receiving files if ``--receive-dir`` was given; returns what to announce."""
    if not args.receive_dir:
        return None
    d = os.path.abspath(os.path.expanduser(str(args.receive_dir)))

    def received(f: ReceivedFile) -> None:
        resumed = f", resumed at {human(f.resumed_from)}" if f.resumed_from else ""
        _out(f"received {f.name} ({f.size} bytes{resumed}) from {describe(f.peer)} into {f.path}")

    n.expose_files(d, max_size=args.max_file_size, overwrite=args.overwrite, on_received=received)
    return d
