"""RPC: grant_rpc, the default dispatcher, the allowlist, errors, revocation."""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import peernet
from conftest import NodeFactory, wait_until

PROBE = "peernet_rpc_probe_mod"


@pytest.fixture
def probe_module(tmp_path: Path) -> Iterator[str]:
    """A module on sys.path that records being imported."""
    d = tmp_path / "mods"
    d.mkdir()
    (d / f"{PROBE}.py").write_text(
        "import threading\n"
        "from os import getcwd\n"
        "from subprocess import check_output\n"
        "from math import factorial\n"
        "started = threading.Event()\n"
        "gate = threading.Event()\n"
        "finished = threading.Event()\n"
        "def add(a, b):\n    return a + b\n"
        "def fail(msg):\n    raise LookupError(msg)\n"
        "def obj():\n    return object()\n"
        "def _private():\n    return 1\n"
        "def hold():\n"
        "    started.set()\n"
        "    gate.wait(30)\n"
        "    finished.set()\n"
        "    return 'released'\n"
        "class Thing:\n    pass\n"
        "alias = add\n"
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


def probe(name: str) -> ModuleType:
    """The probe module itself (the very object the dispatcher imports)."""
    return importlib.import_module(name)


def test_rpc_refuses_names_an_allowed_module_imported(
    make_node: NodeFactory, probe_module: str, tmp_path: Path
) -> None:
    """an allowed module is not a way to reach the modules it uses."""
    a, b = rpc_pair(make_node, rpc_modules=[probe_module, "math"])
    b.grant_rpc(a.key)
    assert a.rpc_call(b.key, probe_module, "add", [2, 3]) == 5  # defined there: works
    assert a.rpc_call(b.key, probe_module, "alias", [2, 3]) == 5  # same function
    marker = tmp_path / "pwned"
    shell = ["/bin/sh", "-c", f"echo pwned > {marker}"]
    with pytest.raises(peernet.HandlerFailed, match="not a function defined in"):
        a.rpc_call(b.key, probe_module, "check_output", [shell])
    assert not marker.exists()  # the command never ran
    for name in ("getcwd", "factorial", "threading", "Thing", "gate"):
        with pytest.raises(peernet.HandlerFailed, match="not a function defined in"):
            a.rpc_call(b.key, probe_module, name)
    assert a.rpc_call(b.key, "math", "hypot", [3, 4]) == 5.0  # a C module's own function


def test_a_slow_rpc_does_not_hold_up_handlers(make_node: NodeFactory, probe_module: str) -> None:
    """RPC runs on its own thread, not on the handler threads."""
    a, b = rpc_pair(make_node, rpc_modules=[probe_module], handler_threads=1)
    c = make_node("c")
    c.trust(b.key)
    b.trust(c.key)
    assert b.address is not None
    c.connect(b.key, b.address)
    b.grant_rpc(a.key)
    b.expose("echo", lambda peer, body: body)
    mod = probe(probe_module)
    got: list[object] = []

    def hold() -> None:
        try:
            got.append(a.rpc_call(b.key, probe_module, "hold", timeout=60))
        except peernet.PeerNetError as e:
            got.append(e)

    rpc = threading.Thread(target=hold)
    rpc.start()
    try:
        assert mod.started.wait(30)
        # The RPC is running (and blocked); the only handler thread is still free.
        assert c.call(b.key, "echo", b"not held up", timeout=5) == b"not held up"
    finally:
        mod.gate.set()
        rpc.join(60)
    assert got == ["released"]


def test_rpc_budget(make_node: NodeFactory, probe_module: str) -> None:
    """an RPC gets `rpc_timeout` seconds; one still queued then does not
    run. The caller's own deadline (here later) is not what ends it."""
    a, b = rpc_pair(make_node, rpc_modules=[probe_module], rpc_timeout=0.5)
    b.grant_rpc(a.key)
    mod = probe(probe_module)
    assert a.rpc_call(b.key, probe_module, "add", [1, 1]) == 2
    errors: dict[str, BaseException] = {}

    def call(fn: str) -> None:
        try:
            a.rpc_call(b.key, probe_module, fn, [1, 2] if fn == "add" else [], timeout=60)
        except peernet.PeerNetError as e:
            errors[fn] = e

    holder = threading.Thread(target=call, args=("hold",))
    holder.start()
    try:
        assert mod.started.wait(30)
        queued = threading.Thread(target=call, args=("add",))  # behind hold on the one RPC thread
        queued.start()
        queued.join(60)
        holder.join(60)
        assert not mod.finished.is_set()  # the budget ended the calls, not the function
    finally:
        mod.gate.set()
        holder.join(60)
    assert sorted(errors) == ["add", "hold"], errors
    assert all(isinstance(e, peernet.HandlerFailed) for e in errors.values()), errors
    ran, skipped = str(errors["hold"]), str(errors["add"])
    assert "ran past the node's rpc_timeout of 0.5 s; it may still be running" in ran, ran
    assert "waited for the RPC thread past" in skipped and "it did not run" in skipped, skipped
    assert mod.finished.wait(30)

    def add_works() -> bool:
        try:
            return bool(a.rpc_call(b.key, probe_module, "add", [2, 2], timeout=10) == 4)
        except peernet.HandlerFailed as e:  # the thread was not free yet
            assert "did not run" in str(e)
            return False

    wait_until(add_works, timeout=30, what="the RPC thread to serve again")
    with pytest.raises(ValueError):
        make_node("bad", rpc_timeout=-1)
