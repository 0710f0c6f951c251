"""Streams across languages (issue 16): the C program tests/interop/rpc_peer.c and a
Python node (the `peernet` package) write to and read from each other's streams, both
ways, and see each other's resets with code and reason. (tests/ctypes/
test_stream_interop.py drives the same C peer through ctypes.)"""

import pathlib
import threading
from typing import Any

import peernet
import pytest

T = 10.0  # seconds: only reached when something is broken


def pattern(n: int) -> bytes:
    """The bytes of rpc_peer.c's pattern()."""
    return bytes((i * 7 + i // 251) & 0xFF for i in range(n))


def fnv1a(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


@pytest.fixture
def peers(tmp_path: pathlib.Path, c_peers: Any):  # type: ignore[no-untyped-def]
    with peernet.Node(tmp_path / "py", listen="127.0.0.1:0", heartbeat=(0.5, 5.0)) as py:
        c = c_peers("c")
        ckey = peernet.Key.from_hex(c.key_hex)
        py.trust(ckey, label="C peer")
        assert c.cmd(f"trust {py.key.hex()}") == "ok"
        assert c.cmd(f"connect {py.key.hex()} {py.address}") == "ok"
        yield py, c, ckey


def test_c_writes_python_reads_and_back(peers: Any) -> None:
    py, c, _ = peers
    got: dict[str, Any] = {}
    done = threading.Event()

    def pyecho(s: peernet.Stream) -> None:
        try:
            got["name"] = s.name
            got["data"] = s.read(timeout=T)  # to the end: what C wrote
            s.write(got["data"], timeout=T)  # and back: Python writes, C reads
            s.close()
        except Exception as e:  # reported below
            got["error"] = e
        finally:
            done.set()

    py.expose_stream("pyecho", pyecho)
    n = 300_000  # more than one receive window
    assert c.cmd(f"sopen {py.key.hex()} pyecho") == "ok"
    assert c.cmd(f"swritegen {n}") == "ok"
    assert c.cmd("sfinish") == "ok"
    reply = c.cmd("sreadall")
    assert done.wait(T) and "error" not in got, got.get("error")
    assert got["name"] == "pyecho" and got["data"] == pattern(n)
    assert reply.split()[:3] == ["ok", str(n), fnv1a(pattern(n))], reply
    assert c.cmd("sfree") == "ok"


def test_python_writes_c_reads_and_back(peers: Any) -> None:
    py, _, ckey = peers
    data = pattern(500_000)
    s = py.open_stream(ckey, "cecho")
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            s.write(data, timeout=T)
            s.close()
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    back = s.read(timeout=T)  # while the writer writes: flow control both ways
    t.join(T)
    assert not t.is_alive() and not errors, errors
    assert back == data


def test_resets_cross_with_code_and_reason(peers: Any) -> None:
    py, c, ckey = peers
    s = py.open_stream(ckey, "creset")
    with pytest.raises(peernet.StreamReset) as e:
        s.read(timeout=T)
    assert (e.value.code, e.value.reason) == (4242, "from C")
    s = py.open_stream(ckey, "nothing")
    with pytest.raises(peernet.StreamReset) as e:
        s.read(timeout=T)
    assert e.value.code == peernet.RESET_REFUSED
    held: list[peernet.Stream] = []
    accepted = threading.Event()

    def hold(stream: peernet.Stream) -> None:
        held.append(stream)
        accepted.set()
        stream.read(timeout=T)  # until the reset below; raises, which ends the handler

    py.expose_stream("pyhold", hold)
    assert c.cmd(f"sopen {py.key.hex()} pyhold") == "ok"
    assert accepted.wait(T)
    held[0].reset(4343, "from Python")
    reply = c.cmd("sreadall")
    assert reply.startswith("err PEERNET_ERR_STREAM_RESET"), reply
    assert c.cmd("sresetinfo") == "ok 4343 from Python"
    assert c.cmd("sfree") == "ok"
