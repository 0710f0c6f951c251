"""Run before every documentation snippet by tests/test_snippets.py (see docs/README.md,
"Tested snippets"). It makes a snippet written for real machines run on loopback:

- every ``peernet.Node`` gets a data directory of its own under the test's temporary
  directory (``$SNIPPET_TMP/<role>/<n>``, n = 0, 1, ... in creation order), whatever
  path the snippet names;
- a ``listen`` address other than None becomes ``127.0.0.1:0``, and any ``discovery=``
  becomes UDP discovery on the test's own port, broadcasting to 127.255.255.255 only;
- ``node.connect(key, "any-non-loopback:port")`` dials the other process's listener;
- the names the docs leave to the reader are defined: ``peer_key`` (the other
  process's key; in a single-process snippet, a key of a node that is not running),
  and its aliases ``other_hex`` (as hex), ``device_key``, ``phone_key``, ``friend_key``,
  ``server_key``, ``client_key``.
"""

import os as _os
import pathlib as _pathlib
import time as _time
from typing import Any as _Any

import peernet as _pn

_ROLE = _os.environ["SNIPPET_ROLE"]
_PEER = _os.environ["SNIPPET_PEER"]
_TMP = _pathlib.Path(_os.environ["SNIPPET_TMP"])
_PORT = int(_os.environ["SNIPPET_DISCOVERY_PORT"])
_count = [0]
_init = _pn.Node.__init__
_connect = _pn.Node.connect


def _node_init(self: _pn.Node, data_dir: _Any, **kw: _Any) -> None:
    if kw.get("listen", "[::]:0") is not None:
        kw["listen"] = "127.0.0.1:0"
    if kw.get("discovery") is not None:
        kw["discovery"] = _pn.UdpDiscovery(port=_PORT, interval=0.2, broadcast=["127.255.255.255"])
    path = _TMP / _ROLE / str(_count[0])
    _count[0] += 1
    _init(self, path, **kw)
    if self.address is not None:
        tmp = _TMP / f"{_ROLE}.addr.tmp"
        tmp.write_text(self.address)
        tmp.rename(_TMP / f"{_ROLE}.addr")


def _node_connect(self: _pn.Node, key: _Any, address: str, timeout: float = 5.0) -> None:
    if not address.startswith("127."):
        where = _TMP / f"{_PEER}.addr"
        deadline = _time.monotonic() + 20
        while not where.exists():  # the other process starts its node
            if _time.monotonic() > deadline:
                raise TimeoutError(f"{_PEER} never started a listening node")
            _time.sleep(0.02)
        address = where.read_text()
    _connect(self, key, address, timeout)


_pn.Node.__init__ = _node_init  # type: ignore[method-assign]
_pn.Node.connect = _node_connect  # type: ignore[method-assign]

peer_key = _pn.Key.from_hex(_os.environ["SNIPPET_PEER_KEY"])
other_hex = peer_key.hex()
device_key = phone_key = friend_key = server_key = client_key = peer_key
if _os.environ.get("SNIPPET_LOG"):  # the library's debug log, for a failing snippet
    import logging as _logging

    _logging.basicConfig(level=_logging.DEBUG, format="%(relativeCreated)6.0f %(name)s %(message)s")
# ---- the snippet ----
