"""Streams across languages (issue 16): a C program (tests/interop/rpc_peer.c, its own
process) and Python, here through ctypes against the same libpeernet.so, write to and
read from each other's streams, both ways, and see each other's resets with code and
reason. tests/interop/test_stream_interop.py does the same with the `peernet` package."""

import ctypes as C
import os
import pathlib
import sys
import threading

import pytest

import peernet_abi as pn
from conftest import addr_of, key_of

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "interop"))

import c_peer  # noqa: E402

lib = pn.lib
ref = C.byref
T = 10000  # ms: only reached when something is broken
_keep = []  # ctypes callback objects, alive for the whole session


def pattern(n):
    """The bytes of rpc_peer.c's pattern()."""
    return bytes((i * 7 + i // 251) & 0xFF for i in range(n))


def fnv1a(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def read_to_end(s):
    buf = C.create_string_buffer(65536)
    got = C.c_size_t()
    out = bytearray()
    while True:
        pn.check(lib.peernet_stream_read(s, buf, len(buf), T, ref(got)))
        if got.value == 0:
            return bytes(out)
        out += buf.raw[: got.value]


def write_all(s, data):
    off = 0
    while off < len(data):
        chunk = data[off:]
        w = C.c_size_t()
        pn.check(lib.peernet_stream_write(s, chunk, len(chunk), T, ref(w)))
        assert w.value > 0
        off += w.value


def reset_info(s):
    code = C.c_uint32()
    reason = C.create_string_buffer(pn.STREAM_REASON_SIZE)
    pn.check(lib.peernet_stream_reset_info(s, ref(code), reason, len(reason)))
    return code.value, reason.value.decode()


def stream_handler(fn):
    """A stream handler calling fn(stream) on a library thread; errors land in .errors."""
    errors = []

    def cb(_ud, _from, stream):
        try:
            fn(stream)
        except Exception as e:  # a ctypes callback must not raise
            errors.append(e)

    h = pn.STREAM_HANDLER_FN(cb)
    _keep.append(h)
    return h, errors


@pytest.fixture(scope="session")
def rpc_peer_binary(tmp_path_factory):
    lib_path = pathlib.Path(os.environ.get("PEERNET_LIB", "")).resolve()
    if not lib_path.is_file():
        pytest.fail("set PEERNET_LIB to the path of libpeernet.so (see scripts/ci/ffi.sh)")
    return c_peer.build(lib_path, tmp_path_factory.mktemp("lib"), tmp_path_factory.mktemp("bin"))


@pytest.fixture
def peers(nodes, rpc_peer_binary, tmp_path):
    """(py node, its key hex, C peer, C key): trusting each other, the C peer connected."""
    c = c_peer.CPeer(rpc_peer_binary, tmp_path / "c")
    try:
        py = nodes.start("py")
        ck = pn.Key()
        pn.check(lib.peernet_key_from_hex(c.key_hex.encode(), ref(ck)))
        pn.check(lib.peernet_trust(py, ref(ck), b"C peer"))
        py_hex = bytes(key_of(py).bytes).hex()
        assert c.cmd(f"trust {py_hex}") == "ok"
        assert c.cmd(f"connect {py_hex} {addr_of(py).decode()}") == "ok"
        pn.check(lib.peernet_wait_connected(py, ref(ck), T))
        yield py, py_hex, c, ck
    finally:
        c.close()


def test_c_writes_python_reads_and_back(peers):
    py, py_hex, c, _ = peers
    got = {}
    done = threading.Event()

    def serve(s):
        got["name"] = lib.peernet_stream_name(s)
        got["data"] = read_to_end(s)  # C wrote it
        write_all(s, got["data"])  # and back: Python writes, C reads
        pn.check(lib.peernet_stream_finish(s))
        lib.peernet_stream_free(s)
        done.set()

    h, errors = stream_handler(serve)
    pn.check(lib.peernet_expose_stream(py, b"pyecho", h, pn.NULL_AUTHORIZE, None, pn.NULL_FREE))
    n = 300_000  # more than one receive window
    assert c.cmd(f"sopen {py_hex} pyecho") == "ok"
    assert c.cmd(f"swritegen {n}") == "ok"
    assert c.cmd("sfinish") == "ok"
    reply = c.cmd("sreadall")
    assert done.wait(T / 1000) and not errors, errors
    assert got["name"] == b"pyecho"
    assert got["data"] == pattern(n)
    assert reply.split()[:3] == ["ok", str(n), fnv1a(pattern(n))], reply
    assert c.cmd("sfree") == "ok"


def test_python_writes_c_reads_and_back(peers):
    py, _, _, ck = peers
    s = pn.StreamP()
    pn.check(lib.peernet_stream_open(py, ref(ck), b"cecho", ref(s)))
    data = pattern(500_000)
    result = {}

    def writer():
        try:
            write_all(s, data)
            pn.check(lib.peernet_stream_finish(s))
        except Exception as e:
            result["error"] = e

    t = threading.Thread(target=writer)
    t.start()
    back = read_to_end(s)  # while the writer writes: flow control both ways
    t.join(T / 1000)
    assert not t.is_alive() and "error" not in result, result
    assert back == data
    lib.peernet_stream_free(s)


def test_resets_cross_with_code_and_reason(peers):
    py, py_hex, c, ck = peers
    # The C handler resets: Python sees its code and reason.
    s = pn.StreamP()
    pn.check(lib.peernet_stream_open(py, ref(ck), b"creset", ref(s)))
    buf = C.create_string_buffer(16)
    got = C.c_size_t()
    assert lib.peernet_stream_read(s, buf, len(buf), T, ref(got)) == pn.ERR_STREAM_RESET
    assert "4242" in pn.last_error() and "from C" in pn.last_error()
    assert reset_info(s) == (4242, "from C")
    lib.peernet_stream_free(s)
    # A name the C peer does not expose: refused.
    pn.check(lib.peernet_stream_open(py, ref(ck), b"nothing", ref(s)))
    assert lib.peernet_stream_read(s, buf, len(buf), T, ref(got)) == pn.ERR_STREAM_RESET
    assert reset_info(s)[0] == pn.STREAM_RESET_REFUSED
    lib.peernet_stream_free(s)
    # Python resets a stream C opened: C sees its code and reason.
    held = []
    accepted = threading.Event()

    def hold(stream):
        held.append(stream)
        accepted.set()

    h, errors = stream_handler(hold)
    pn.check(lib.peernet_expose_stream(py, b"pyhold", h, pn.NULL_AUTHORIZE, None, pn.NULL_FREE))
    assert c.cmd(f"sopen {py_hex} pyhold") == "ok"
    assert accepted.wait(T / 1000) and not errors
    pn.check(lib.peernet_stream_reset(held[0], 4343, b"from Python"))
    reply = c.cmd("sreadall")
    assert reply.startswith("err PEERNET_ERR_STREAM_RESET"), reply
    assert c.cmd("sresetinfo") == "ok 4343 from Python"
    assert c.cmd("sfree") == "ok"
    lib.peernet_stream_free(held[0])
