"""RPC: grant_rpc, the default dispatcher, the allowlist, errors, revocation."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import peernet
from conftest import NodeFactory

PROBE = "peernet_rpc_probe_mod"


@pytest.fixture
def probe_module(tmp_path: Path) -> Iterator[str]:
    """A module on sys.path that records being imported."""
    d = tmp_path / "mods"
    d.mkdir()
    (d / f"{PROBE}.py").write_text(
        "def add(a, b):\n    return a + b\n"
        "def fail(msg):\n    raise LookupError(msg)\n"
        "def obj():\n    return object()\n"
        "def _private():\n    return 1\n"
    )
    sys.path.insert(0, str(d))
    try:
        yield PROBE
    finally:
        sys.path.remove(str(d))
        sys.modules.pop(PROBE, None)


def rpc_pair(make_node: NodeFactory, **kw: object) -> tuple[peernet.Node, peernet.Node]:
    a = make_node("a")
    b = make_node("b", **kw)
    a.trust(b.key)
    b.trust(a.key)
    assert b.address is not None
    a.connect(b.key, b.address)
    return a, b


def test_rpc_needs_a_grant_and_revocation_is_immediate(make_node: NodeFactory) -> None:
    a, b = rpc_pair(make_node)
    with pytest.raises(peernet.Forbidden):
        a.rpc_call(b.key, "math", "hypot", [3, 4])
    b.grant_rpc(a.key)
    assert a.rpc_call(b.key, "math", "hypot", [3, 4]) == 5.0
    assert a.rpc_call(b.key, "builtins", "sorted", [[3, 1, 2]]) == [1, 2, 3]
    b.grant_rpc(a.key, False)
    with pytest.raises(peernet.Forbidden):
        a.rpc_call(b.key, "math", "hypot", [3, 4])
    assert a.is_connected(b.key)  # no reconnect was needed either way
    b.grant_rpc(a.key)
    assert a.rpc_call(b.key, "math", "hypot", [6, 8]) == 10.0


def test_rpc_errors(make_node: NodeFactory, probe_module: str) -> None:
    a, b = rpc_pair(make_node)
    b.grant_rpc(a.key)
    assert a.rpc_call(b.key, probe_module, "add", [2, 3]) == 5
    with pytest.raises(peernet.HandlerFailed, match="LookupError: boom"):
        a.rpc_call(b.key, probe_module, "fail", ["boom"])
    with pytest.raises(peernet.HandlerFailed, match="not JSON-serialisable"):
        a.rpc_call(b.key, probe_module, "obj")
    with pytest.raises(peernet.HandlerFailed, match="ModuleNotFoundError"):
        a.rpc_call(b.key, "no_such_module_xyz", "f")
    with pytest.raises(peernet.HandlerFailed, match="AttributeError"):
        a.rpc_call(b.key, "math", "no_such_function")
    with pytest.raises(peernet.HandlerFailed, match="private"):
        a.rpc_call(b.key, probe_module, "_private")
    with pytest.raises(peernet.HandlerFailed, match="TypeError"):
        a.rpc_call(b.key, "math", "hypot", ["x", "y"])
    with pytest.raises(TypeError):
        a.rpc_call(b.key, "math", "hypot", "34")
    with pytest.raises(TypeError):
        a.rpc_call(b.key, "math", "hypot", [object()])
    assert a.rpc_call(b.key, "math", "hypot", [3, 4]) == 5.0  # still serving


def test_rpc_allowlist(make_node: NodeFactory, probe_module: str) -> None:
    a, b = rpc_pair(make_node, rpc_modules=["math"])
    b.grant_rpc(a.key)
    assert a.rpc_call(b.key, "math", "hypot", [3, 4]) == 5.0
    sys.modules.pop(probe_module, None)
    with pytest.raises(peernet.HandlerFailed, match="not in rpc_modules"):
        a.rpc_call(b.key, probe_module, "add", [1, 2])
    assert probe_module not in sys.modules  # refused before import
    with pytest.raises(peernet.HandlerFailed, match="not in rpc_modules"):
        a.rpc_call(b.key, "os", "getcwd")


def test_rpc_untrusted_caller_never_reaches_dispatcher(make_node: NodeFactory) -> None:
    a, b = rpc_pair(make_node)
    b.grant_rpc(a.key)
    b.untrust(a.key)  # also withdraws the RPC right and drops the connection
    assert b.trusted() == []
    with pytest.raises((peernet.NotConnected, peernet.Closed)):
        a.rpc_call(b.key, "math", "hypot", [3, 4])
