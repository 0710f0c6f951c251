"""Issue 20 ("the first hour") through the raw ABI: errors name the thing and the fix,
peernet_node_address, peernet_event_fd (with select.poll)."""

import ctypes as C
import select

import peernet_abi as pn
from conftest import addr_of, key_of

lib = pn.lib
ref = C.byref

ECHO = pn.HANDLER_FN(lambda ud, f, body, n, r: lib.peernet_respond(r, body, n) if r else None)


def fingerprint(key):
    out = C.create_string_buffer(17)  # PEERNET_FINGERPRINT_SIZE
    lib.peernet_key_fingerprint(ref(key), out)
    return out.value.decode()


def test_call_to_an_untrusted_key_names_it_and_the_fix(nodes):
    a = nodes.start("a")
    stranger = pn.Key()
    lib.peernet_key_from_hex(b"44" * 32, ref(stranger))
    s = lib.peernet_call(a, ref(stranger), b"echo", None, 0, 1000, None)
    assert s == pn.ERR_UNTRUSTED_PEER, pn.status_name(s)
    msg = pn.last_error()
    assert fingerprint(stranger) in msg and "peernet_trust" in msg, msg
    assert lib.peernet_send(a, ref(stranger), b"echo", None, 0) == pn.ERR_UNTRUSTED_PEER


def test_no_such_handler_and_payload_too_large_name_what(pair):
    a, b, ka, kb = pair
    assert lib.peernet_expose(b, b"echo", ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE) == pn.OK
    assert lib.peernet_call(a, ref(kb), b"gone", None, 0, 5000, None) == pn.ERR_NO_SUCH_HANDLER
    assert '"gone"' in pn.last_error(), pn.last_error()
    big = b"\0" * (2 << 20)
    assert lib.peernet_call(a, ref(kb), b"echo", big, len(big), 5000, None) == pn.ERR_PAYLOAD_TOO_LARGE
    msg = pn.last_error()
    assert "2097152 bytes" in msg and "1048576" in msg, msg


def test_node_address(nodes):
    n = nodes.start("addr")
    buf = C.create_string_buffer(64)
    assert lib.peernet_node_address(n, buf, 64) == pn.OK
    assert buf.value == addr_of(n)
    need = len(addr_of(n)) + 1  # before the call: every export clears the last error
    small = C.create_string_buffer(4)
    assert lib.peernet_node_address(n, small, 4) == pn.ERR_INVALID_ARGUMENT
    assert small.value == b"" and f"at least {need} bytes" in pn.last_error(), pn.last_error()


def test_event_fd_is_readable_while_events_wait(nodes):
    a, b = nodes.start("a"), nodes.start("b")
    ka, kb = key_of(a), key_of(b)
    pn.check(lib.peernet_trust(a, ref(kb), None))
    pn.check(lib.peernet_trust(b, ref(ka), None))
    fd = lib.peernet_event_fd(a)
    assert fd >= 0 and lib.peernet_event_fd(a) == fd
    p = select.poll()
    p.register(fd, select.POLLIN)
    assert p.poll(0) == []
    pn.check(lib.peernet_connect(a, ref(kb), addr_of(b), 5000))
    assert p.poll(5000) != []
    assert p.poll(0) != []  # level-triggered: still readable until drained
    ev = pn.Event()
    got = 0
    while lib.peernet_next_event(a, 0, ref(ev)) == pn.OK:
        got += 1
    assert got >= 1
    assert p.poll(0) == []
