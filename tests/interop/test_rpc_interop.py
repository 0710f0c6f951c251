"""RPC across languages (issue 6): a C program calls a Python node's RPC, and a Python
node calls a C node's dispatcher; a peer without the right is refused; revoking the
right takes effect on the next call without reconnecting."""

import json
import pathlib

import peernet
import pytest

T = 5.0


def py_node(tmp_path: pathlib.Path, name: str, **kw: object) -> peernet.Node:
    return peernet.Node(tmp_path / name, listen="127.0.0.1:0", heartbeat=(0.5, 5.0), **kw)  # type: ignore[arg-type]


def test_c_calls_python_rpc_and_revocation_is_immediate(tmp_path, c_peers):  # type: ignore[no-untyped-def]
    with py_node(tmp_path, "py", rpc_modules=["math"]) as py:
        c = c_peers("c")
        ckey = peernet.Key.from_hex(c.key_hex)
        py.trust(ckey, label="C controller")
        assert c.cmd(f"trust {py.key.hex()}") == "ok"
        assert c.cmd(f"connect {py.key.hex()} {py.address}") == "ok"
        # Trusted but not granted: refused.
        reply = c.cmd(f"rpc {py.key.hex()} math hypot [3, 4]")
        assert reply.startswith("err PEERNET_ERR_FORBIDDEN"), reply
        py.grant_rpc(ckey)
        reply = c.cmd(f"rpc {py.key.hex()} math hypot [3, 4]")
        assert reply.startswith("ok "), reply
        assert json.loads(reply[3:]) == 5.0
        # A module outside the allowlist fails in the handler, naming the problem.
        reply = c.cmd(f"rpc {py.key.hex()} os getcwd []")
        assert reply.startswith("err PEERNET_ERR_HANDLER_FAILED"), reply
        # Revoked: the very next call is refused, on the same connection.
        py.grant_rpc(ckey, False)
        reply = c.cmd(f"rpc {py.key.hex()} math hypot [3, 4]")
        assert reply.startswith("err PEERNET_ERR_FORBIDDEN"), reply
        assert c.cmd(f"connected {py.key.hex()}") == "yes"


def test_python_calls_c_dispatcher(tmp_path, c_peers):  # type: ignore[no-untyped-def]
    with py_node(tmp_path, "py") as py, py_node(tmp_path, "stranger") as stranger:
        c = c_peers("c")
        ckey = peernet.Key.from_hex(c.key_hex)
        for n in (py, stranger):
            n.trust(ckey)
            assert c.cmd(f"trust {n.key.hex()}") == "ok"
        assert c.cmd(f"grant {py.key.hex()} 1") == "ok"
        py.connect(ckey, c.address, timeout=T)
        assert py.rpc_call(ckey, "calc", "add", [3, 4, 5], timeout=T) == 12
        with pytest.raises(peernet.HandlerFailed, match="as requested"):
            py.rpc_call(ckey, "calc", "fail", [], timeout=T)
        # A trusted peer without the right is refused by the C node.
        stranger.connect(ckey, c.address, timeout=T)
        with pytest.raises(peernet.Forbidden):
            stranger.rpc_call(ckey, "calc", "add", [1], timeout=T)
        # Revoked on the C side: the next call is refused without reconnecting.
        assert c.cmd(f"grant {py.key.hex()} 0") == "ok"
        with pytest.raises(peernet.Forbidden):
            py.rpc_call(ckey, "calc", "add", [1, 2], timeout=T)
        assert py.is_connected(ckey)
        # Asymmetric: the C node granting py does not let the C node call py.
        assert c.cmd(f"grant {py.key.hex()} 1") == "ok"
        reply = c.cmd(f"rpc {py.key.hex()} math hypot [3, 4]")
        assert reply.startswith("err PEERNET_ERR_FORBIDDEN"), reply
