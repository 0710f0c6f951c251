"""libpeernet's raw C ABI through ctypes: lifecycle, every status code, bad arguments,
callbacks from library threads, respond-later, re-entrancy, free_user_data once, freeing
a node with calls in flight, 1,000 concurrent async calls."""

import ctypes as C
import os
import socket
import threading
import time

import peernet_abi as pn
from conftest import addr_of, key_of

lib = pn.lib
ref = C.byref


def call(node, key, name, body=b"", timeout=5000):
    buf = pn.Buffer()
    s = lib.peernet_call(node, ref(key), name, body, len(body), timeout, ref(buf))
    data = buf.value()
    lib.peernet_buffer_free(ref(buf))
    return s, data


# Handlers keep their ctypes callback objects alive in this list for the whole session.
_keep = []


def make_handler(fn):
    """fn(from_key_bytes, body_bytes, responder_ptr_or_None)."""

    def cb(_ud, from_, body, n, responder):
        fn(bytes(from_.contents.bytes), C.string_at(body, n) if n else b"", responder)

    h = pn.HANDLER_FN(cb)
    _keep.append(h)
    return h


def echo_fn(_from, body, responder):
    if responder:
        lib.peernet_respond(responder, body, len(body))


ECHO = make_handler(echo_fn)


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


# ---------------------------------------------------------------- basics


def test_versions_and_status_strings():
    assert lib.peernet_version() == b"0.1.0"
    abi_file = os.path.join(os.path.dirname(__file__), "..", "..", "peernet-ffi", "ABI_VERSION")
    with open(abi_file) as f:
        assert lib.peernet_abi_version() == int(f.read())
    for i, name in enumerate(pn.STATUS):
        assert pn.status_name(i) == name
    assert pn.status_name(-7) == "PEERNET_ERR_UNKNOWN"


def test_last_error_and_panic_guard():
    k = pn.Key()
    assert lib.peernet_key_from_hex(b"zz", ref(k)) == pn.ERR_INVALID_ARGUMENT
    assert "64 hex" in pn.last_error()
    assert lib.peernet_selftest_panic() == pn.ERR_INTERNAL
    assert "deliberate panic" in pn.last_error()
    assert lib.peernet_key_from_hex(b"ab" * 32, ref(k)) == pn.OK
    assert pn.last_error() == ""


def test_keys_and_bad_input():
    k = pn.Key()
    hexkey = bytes(range(32)).hex().encode()
    assert lib.peernet_key_from_hex(hexkey, ref(k)) == pn.OK
    assert k.raw() == bytes(range(32))
    out = C.create_string_buffer(65)
    lib.peernet_key_to_hex(ref(k), out)
    assert out.value == hexkey
    fp = C.create_string_buffer(17)
    lib.peernet_key_fingerprint(ref(k), fp)
    assert len(fp.value) == 16
    assert lib.peernet_key_from_hex(None, ref(k)) == pn.ERR_INVALID_ARGUMENT
    assert lib.peernet_key_from_hex(hexkey, None) == pn.ERR_INVALID_ARGUMENT
    assert lib.peernet_key_from_hex(b"\xff" * 64, ref(k)) == pn.ERR_INVALID_ARGUMENT
    assert "UTF-8" in pn.last_error()
    lib.peernet_key_to_hex(None, out)  # no crash, error set
    assert pn.last_error() != ""


def test_config_errors(tmp_path):
    assert lib.peernet_config_new(None) is None
    assert lib.peernet_config_new(b"") is None
    assert lib.peernet_config_new(b"/tmp/\xc3\x28") is None
    cfg = lib.peernet_config_new(str(tmp_path / "c").encode())
    try:
        assert lib.peernet_config_set_listen(cfg, b"bogus") == pn.ERR_INVALID_ARGUMENT
        assert lib.peernet_config_set_max_frame(cfg, 10) == pn.ERR_INVALID_ARGUMENT
        assert lib.peernet_config_set_heartbeat(cfg, 0, 0) == pn.ERR_INVALID_ARGUMENT
        assert lib.peernet_config_set_udp_discovery(cfg, 0, 0, b"x,y") == pn.ERR_INVALID_ARGUMENT
        assert lib.peernet_config_set_udp_discovery(cfg, 4999, 100, b"127.255.255.255") == pn.OK
        assert lib.peernet_config_set_network_monitor(cfg, 250) == pn.OK
        assert lib.peernet_config_set_listen(None, b"127.0.0.1:0") == pn.ERR_INVALID_ARGUMENT
    finally:
        lib.peernet_config_free(cfg)
    lib.peernet_config_free(None)


def test_discovery_interfaces_mdns_and_manual_addresses(tmp_path, nodes):
    """Issue 18: the interface lists, mDNS and manual addresses through the C ABI."""
    cfg = lib.peernet_config_new(str(tmp_path / "i").encode())
    try:
        # Interface lists need discovery on; bad patterns are refused.
        assert lib.peernet_config_set_discovery_interfaces(cfg, b"eth0", None) == pn.ERR_INVALID_ARGUMENT
        assert "set_udp_discovery" in pn.last_error()
        assert lib.peernet_config_set_udp_discovery(cfg, 4999, 100, b"127.255.255.255") == pn.OK
        assert lib.peernet_config_set_discovery_interfaces(cfg, b"eth0, wl*", b"wg*") == pn.OK
        assert lib.peernet_config_set_discovery_interfaces(cfg, None, b"a b") == pn.ERR_INVALID_ARGUMENT
        assert lib.peernet_config_set_mdns(cfg, True, None, b"x*y") == pn.ERR_INVALID_ARGUMENT
        assert lib.peernet_config_set_mdns(cfg, False, None, None) == pn.OK
    finally:
        lib.peernet_config_free(cfg)
    a = nodes.start("addr")
    other = pn.Key()
    pn.check(lib.peernet_key_from_hex(b"ab" * 32, ref(other)))
    assert lib.peernet_trust_add_address(a, ref(other), b"10.0.0.2:7100") == pn.ERR_UNTRUSTED_PEER
    pn.check(lib.peernet_trust(a, ref(other), None))
    assert lib.peernet_trust_add_address(a, ref(other), b"no-port") == pn.ERR_INVALID_ARGUMENT
    assert "host:port" in pn.last_error()
    pn.check(lib.peernet_trust_add_address(a, ref(other), b"Peer.Example:7100"))
    was = C.c_bool(False)
    pn.check(lib.peernet_trust_remove_address(a, ref(other), b"peer.example:7100", ref(was)))
    assert was.value
    pn.check(lib.peernet_trust_remove_address(a, ref(other), b"peer.example:7100", ref(was)))
    assert not was.value
    assert lib.peernet_trust_remove_address(a, ref(other), b"x:1", None) == pn.ERR_INVALID_ARGUMENT


def test_lifecycle(nodes):
    node = pn.NodeP()
    assert lib.peernet_node_start(None, ref(node)) == pn.ERR_INVALID_ARGUMENT
    assert not node.value
    a = nodes.start("life")
    assert lib.peernet_node_port(a) > 0
    k1 = key_of(a)
    nodes.free(a)
    a = nodes.start("life")
    assert key_of(a).raw() == k1.raw()  # identity persisted
    lib.peernet_node_free(None)


# ---------------------------------------------------------------- status codes


def test_every_status_code(nodes, pair, tmp_path):
    a, b, ka, kb = pair
    stranger = pn.Key()
    lib.peernet_key_from_hex(b"11" * 32, ref(stranger))
    # NOT_CONNECTED / UNTRUSTED_PEER
    c = nodes.start("c")
    kc = key_of(c)
    lib.peernet_trust(a, ref(kc), None)
    assert call(a, kc, b"echo")[0] == pn.ERR_NOT_CONNECTED
    assert lib.peernet_connect(a, ref(stranger), addr_of(b), 1000) == pn.ERR_UNTRUSTED_PEER
    # IO: refused, and listen address in use
    # Bound but not listening: refused, and no other process can take the port meanwhile.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    assert lib.peernet_connect(a, ref(kc), f"127.0.0.1:{port}".encode(), 300) == pn.ERR_IO
    s.close()
    cfg = nodes.config("io")
    lib.peernet_config_set_listen(cfg, addr_of(b))
    n = pn.NodeP()
    assert lib.peernet_node_start(cfg, ref(n)) == pn.ERR_IO
    lib.peernet_config_free(cfg)
    # HANDSHAKE_FAILED (a listener that never speaks) and TIMEOUT (shorter deadline)
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(4)
    cfg = nodes.config("hs")
    lib.peernet_config_set_handshake_timeout(cfg, 300)
    h = nodes.start("hs", cfg)
    lib.peernet_config_free(cfg)
    lib.peernet_trust(h, ref(stranger), None)
    maddr = f"127.0.0.1:{mute.getsockname()[1]}".encode()
    assert lib.peernet_connect(h, ref(stranger), maddr, 3000) == pn.ERR_HANDSHAKE_FAILED
    assert lib.peernet_connect(h, ref(stranger), maddr, 100) == pn.ERR_TIMEOUT
    mute.close()
    # CORRUPT_FILE
    d = tmp_path / "corrupt"
    d.mkdir()
    (d / "trusted_peers").write_text("garbage\n")
    cfg = lib.peernet_config_new(str(d).encode())
    assert lib.peernet_node_start(cfg, ref(n)) == pn.ERR_CORRUPT_FILE
    lib.peernet_config_free(cfg)
    # handler outcomes
    assert lib.peernet_expose(b, b"echo", ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE) == pn.OK
    assert lib.peernet_expose(b, b"echo", ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE) == pn.ERR_ALREADY_EXISTS
    fail = make_handler(lambda f, body, r: lib.peernet_respond_error(r, b"nope"))
    deny = pn.AUTHORIZE_FN(lambda ud, k: False)
    _keep.append(deny)
    lib.peernet_expose(b, b"fail", fail, pn.NULL_AUTHORIZE, None, pn.NULL_FREE)
    lib.peernet_expose(b, b"deny", ECHO, deny, None, pn.NULL_FREE)
    assert call(a, kb, b"missing")[0] == pn.ERR_NO_SUCH_HANDLER
    assert call(a, kb, b"deny")[0] == pn.ERR_FORBIDDEN
    assert call(a, kb, b"fail") == (pn.ERR_HANDLER_FAILED, b"nope")
    assert call(a, kb, b"echo", b"\0" * (2 << 20))[0] == pn.ERR_PAYLOAD_TOO_LARGE
    assert call(a, kb, b"echo", b"still up") == (pn.OK, b"still up")
    # TIMEOUT on a call whose answer never comes, then CLOSED when the callee goes away
    held = []
    hold = make_handler(lambda f, body, r: held.append(r))
    lib.peernet_expose(b, b"hold", hold, pn.NULL_AUTHORIZE, None, pn.NULL_FREE)
    assert call(a, kb, b"hold", timeout=200)[0] == pn.ERR_TIMEOUT
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("s", call(a, kb, b"hold", timeout=10000)[0]))
    t.start()
    assert wait_for(lambda: len(held) == 2)
    nodes.free(b)
    t.join(10)
    assert result["s"] == pn.ERR_CLOSED
    # answering after the node was freed: an error, not a crash
    assert lib.peernet_respond(held[0], b"x", 1) == pn.ERR_INVALID_ARGUMENT


def test_busy_data_dir(nodes):
    """Issue 14 item 4: a second node on a data directory in use gets BUSY, naming the
    holder's pid; freeing the first frees the directory."""
    first = nodes.start("busy")
    cfg = nodes.config("busy")
    pn.check(lib.peernet_config_set_listen(cfg, b"none"))
    n = pn.NodeP()
    assert lib.peernet_node_start(cfg, ref(n)) == pn.ERR_BUSY
    assert f"process {os.getpid()}" in pn.last_error(), pn.last_error()
    assert pn.status_name(pn.ERR_BUSY) == "PEERNET_ERR_BUSY"
    nodes.free(first)
    pn.check(lib.peernet_node_start(cfg, ref(n)))
    lib.peernet_config_free(cfg)
    nodes.free(n)


def test_overloaded(nodes):
    cfg = nodes.config("ovl-b")
    lib.peernet_config_set_max_concurrent_calls(cfg, 1)
    b = nodes.start("ovl-b", cfg)
    lib.peernet_config_free(cfg)
    a = nodes.start("ovl-a")
    ka, kb = key_of(a), key_of(b)
    lib.peernet_trust(a, ref(kb), None)
    lib.peernet_trust(b, ref(ka), None)
    pn.check(lib.peernet_connect(a, ref(kb), addr_of(b), 5000))
    held = []
    lib.peernet_expose(b, b"hold", make_handler(lambda f, body, r: held.append(r)), pn.NULL_AUTHORIZE, None, pn.NULL_FREE)
    done = threading.Event()
    t = threading.Thread(target=lambda: (call(a, kb, b"hold", timeout=10000), done.set()))
    t.start()
    assert wait_for(lambda: len(held) == 1)
    assert call(a, kb, b"hold")[0] == pn.ERR_OVERLOADED
    assert lib.peernet_respond(held[0], b"ok", 2) == pn.OK
    t.join(10)
    assert done.is_set()


def test_bad_arguments(pair):
    a, b, ka, kb = pair
    lib.peernet_expose(b, b"echo", ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE)
    bad = [
        lib.peernet_expose(b, b"n" * 300, ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE),
        lib.peernet_expose(b, b"e\xffo", ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE),
        lib.peernet_expose(b, b"", ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE),
        lib.peernet_expose(b, b"peernet.x", ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE),
        lib.peernet_expose(b, b"x", pn.NULL_HANDLER, pn.NULL_AUTHORIZE, None, pn.NULL_FREE),
        lib.peernet_expose(None, b"x", ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE),
        call(a, kb, b"n" * 300)[0],
        call(a, kb, b"\xfe")[0],
        lib.peernet_call(a, ref(kb), None, None, 0, 1000, None),
        lib.peernet_call(a, None, b"echo", None, 0, 1000, None),
        lib.peernet_call(None, ref(kb), b"echo", None, 0, 1000, None),
        lib.peernet_call(a, ref(kb), b"echo", None, 5, 1000, None),
        lib.peernet_send(a, ref(kb), b"echo", None, 5),
        lib.peernet_connect(a, ref(kb), b"nowhere", 1000),
        lib.peernet_trust(a, ref(kb), b"\xff"),
        lib.peernet_respond(None, None, 0),
        lib.peernet_respond_error(None, b"x"),
        lib.peernet_peers(a, None, None),
        lib.peernet_next_event(a, 0, None),
        lib.peernet_set_logger(pn.NULL_LOG, None, 99),
        lib.peernet_discovered(a, ref(kb), b"bad"),
    ]
    assert bad == [pn.ERR_INVALID_ARGUMENT] * len(bad)
    assert call(a, kb, b"echo", b"fine") == (pn.OK, b"fine")


# ---------------------------------------------------------------- callbacks


def test_callbacks_run_on_library_threads_and_respond_later(pair):
    a, b, ka, kb = pair
    seen = {}
    pending = []

    def later(f, body, r):
        seen["thread"] = threading.get_ident()
        seen["from"] = f
        pending.append(r)

    lib.peernet_expose(b, b"later", make_handler(later), pn.NULL_AUTHORIZE, None, pn.NULL_FREE)

    def answer():
        assert wait_for(lambda: pending)
        r = pending[0]
        seen["first"] = lib.peernet_respond(r, b"done later", 10)
        seen["second"] = lib.peernet_respond(r, b"again", 5)

    t = threading.Thread(target=answer)
    t.start()
    assert call(a, kb, b"later") == (pn.OK, b"done later")
    t.join(5)
    assert seen["thread"] != threading.get_ident()
    assert seen["from"] == ka.raw()
    assert seen["first"] == pn.OK
    assert seen["second"] == pn.ERR_INVALID_ARGUMENT


def test_reentrancy(pair):
    a, b, ka, kb = pair
    lib.peernet_expose(a, b"echo", ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE)
    inner = {}

    def reenter(f, body, r):
        s, data = call(b, ka, b"echo", body)  # blocking call from inside a callback
        peers = C.POINTER(pn.PeerInfo)()
        n = C.c_size_t()
        inner["peers"] = lib.peernet_peers(b, ref(peers), ref(n)) == pn.OK and n.value == 1
        lib.peernet_peers_free(peers, n.value)
        inner["expose"] = lib.peernet_expose(b, b"tmp", ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE)
        inner["revoke"] = lib.peernet_revoke(b, b"tmp")
        lib.peernet_respond(r, data, len(data))
        inner["s"] = s

    lib.peernet_expose(b, b"reenter", make_handler(reenter), pn.NULL_AUTHORIZE, None, pn.NULL_FREE)
    assert call(a, kb, b"reenter", b"ping") == (pn.OK, b"ping")
    assert inner == {"s": pn.OK, "peers": True, "expose": pn.OK, "revoke": pn.OK}


def test_free_user_data_exactly_once(nodes, pair):
    a, b, ka, kb = pair
    freed = []
    free_fn = pn.FREE_FN(lambda ud: freed.append(ud))
    _keep.append(free_fn)
    assert lib.peernet_expose(b, b"r", ECHO, pn.NULL_AUTHORIZE, 1, free_fn) == pn.OK
    assert call(a, kb, b"r")[0] == pn.OK
    assert lib.peernet_revoke(b, b"r") == pn.OK
    assert wait_for(lambda: freed == [1])
    assert lib.peernet_expose(b, b"n", ECHO, pn.NULL_AUTHORIZE, 2, free_fn) == pn.OK
    assert lib.peernet_expose(b, b"n", ECHO, pn.NULL_AUTHORIZE, 3, free_fn) == pn.ERR_ALREADY_EXISTS
    ev = pn.EVENT_FN(lambda *args: None)
    rpc = pn.RPC_FN(lambda *args: None)
    _keep.extend([ev, rpc])
    assert lib.peernet_set_event_callback(b, ev, 4, free_fn) == pn.OK
    assert lib.peernet_set_event_callback(b, ev, 5, free_fn) == pn.OK
    assert lib.peernet_set_rpc_dispatcher(b, rpc, 6, free_fn) == pn.OK
    assert lib.peernet_set_rpc_dispatcher(b, rpc, 7, free_fn) == pn.OK
    assert sorted(freed) == [1, 4, 6]
    nodes.free(b)
    assert sorted(freed) == [1, 2, 4, 5, 6, 7]  # all before node_free returned; 3 never


# ---------------------------------------------------------------- async calls


def test_1000_concurrent_async_calls(pair):
    a, b, ka, kb = pair
    lib.peernet_expose(b, b"echo", ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE)
    results = {}
    lock = threading.Lock()
    all_done = threading.Event()

    def done(ud, status, data, n):
        with lock:
            results.setdefault(ud, []).append((status, C.string_at(data, n) if n else b""))
            if len(results) == 1000:
                all_done.set()

    cb = pn.CALL_FN(done)
    _keep.append(cb)
    for i in range(1, 1001):
        body = str(i).encode()
        assert lib.peernet_call_async(a, ref(kb), b"echo", body, len(body), 30000, cb, i) == pn.OK
    assert all_done.wait(60)
    assert all(v == [(pn.OK, str(k).encode())] for k, v in results.items())


def test_free_node_with_calls_in_flight(nodes, pair):
    a, b, ka, kb = pair
    held = []
    lib.peernet_expose(b, b"hold", make_handler(lambda f, body, r: held.append(r)), pn.NULL_AUTHORIZE, None, pn.NULL_FREE)
    outcomes = []
    cb = pn.CALL_FN(lambda ud, s, d, n: outcomes.append((ud, s)))
    _keep.append(cb)
    for i in range(1, 101):
        assert lib.peernet_call_async(a, ref(kb), b"hold", None, 0, 30000, cb, i) == pn.OK
    assert wait_for(lambda: len(held) == 100)
    nodes.free(a)
    # every completion ran exactly once, with CLOSED, before node_free returned
    assert sorted(ud for ud, _ in outcomes) == list(range(1, 101))
    assert {s for _, s in outcomes} == {pn.ERR_CLOSED}


# ---------------------------------------------------------------- events, peers, rpc, logger


def test_events_peers_discovery(nodes):
    a, b = nodes.start("ev-a"), nodes.start("ev-b")
    ka, kb = key_of(a), key_of(b)
    lib.peernet_trust(a, ref(kb), b"bee")
    lib.peernet_trust(b, ref(ka), None)
    got = []
    threads = set()

    def on_event(ud, kind, key, detail):
        threads.add(threading.get_ident())
        got.append((kind, bytes(key.contents.bytes) if key else None, detail.decode()))

    cb = pn.EVENT_FN(on_event)
    _keep.append(cb)
    lib.peernet_set_event_callback(a, cb, None, pn.NULL_FREE)
    ev = pn.Event()
    assert lib.peernet_next_event(a, 0, ref(ev)) == pn.ERR_TIMEOUT
    pn.check(lib.peernet_connect(a, ref(kb), addr_of(b), 5000))
    assert lib.peernet_next_event(a, 5000, ref(ev)) == pn.OK
    assert ev.kind == pn.EVENT_CONNECTED and ev.has_key and ev.key.raw() == kb.raw()
    assert ev.detail == addr_of(b)
    assert wait_for(lambda: any(k == pn.EVENT_CONNECTED for k, _, _ in got))
    assert threading.get_ident() not in threads
    peers = C.POINTER(pn.PeerInfo)()
    n = C.c_size_t()
    pn.check(lib.peernet_peers(a, ref(peers), ref(n)))
    assert n.value == 1
    p = peers[0]
    assert (p.key.raw(), p.state, p.trusted, p.rpc, p.label, p.address) == (
        kb.raw(), pn.PEER_CONNECTED, True, False, b"bee", addr_of(b))
    lib.peernet_peers_free(peers, n.value)
    pn.check(lib.peernet_disconnect(a, ref(kb)))
    assert lib.peernet_next_event(a, 5000, ref(ev)) == pn.OK
    assert ev.kind == pn.EVENT_DISCONNECTED and ev.detail
    assert ev.close_reason == pn.CLOSE_LOCAL_DISCONNECT
    pn.check(lib.peernet_discovered(a, ref(kb), addr_of(b)))
    assert lib.peernet_next_event(a, 5000, ref(ev)) == pn.OK and ev.kind == pn.EVENT_DISCOVERED
    assert ev.close_reason == pn.CLOSE_NONE
    pn.check(lib.peernet_lost(a, ref(kb)))
    assert lib.peernet_next_event(a, 5000, ref(ev)) == pn.OK and ev.kind == pn.EVENT_LOST


def test_rpc(pair):
    a, b, ka, kb = pair

    def dispatch(ud, from_, module, function, args, n, r):
        out = b"%s.%s(%s)" % (module, function, C.string_at(args, n))
        lib.peernet_respond(r, out, len(out))

    d = pn.RPC_FN(dispatch)
    _keep.append(d)
    buf = pn.Buffer()
    assert lib.peernet_rpc_call(a, ref(kb), b"m", b"f", b"[]", 2, 5000, ref(buf)) == pn.ERR_FORBIDDEN
    pn.check(lib.peernet_grant_rpc(b, ref(ka), True))
    pn.check(lib.peernet_set_rpc_dispatcher(b, d, None, pn.NULL_FREE))
    assert lib.peernet_rpc_call(a, ref(kb), b"math", b"add", b"[1,2]", 5, 5000, ref(buf)) == pn.OK
    assert buf.value() == b"math.add([1,2])"
    lib.peernet_buffer_free(ref(buf))


def test_logger(nodes):
    records = []
    cb = pn.LOG_FN(lambda ud, level, target, msg: records.append((level, target, msg)))
    _keep.append(cb)
    pn.check(lib.peernet_set_logger(cb, None, pn.LOG_DEBUG))
    nodes.free(nodes.start("log"))
    pn.check(lib.peernet_set_logger(pn.NULL_LOG, None, pn.LOG_OFF))
    assert records
    assert all(pn.LOG_ERROR <= lvl <= pn.LOG_DEBUG for lvl, _, _ in records)
    count = len(records)
    nodes.free(nodes.start("log"))
    assert len(records) == count


def test_node_free_from_inside_its_callback(nodes, pair):
    a, b, ka, kb = pair
    lib.peernet_expose(b, b"echo", ECHO, pn.NULL_AUTHORIZE, None, pn.NULL_FREE)
    done = threading.Event()

    def complete(ud, s, d, length):
        nodes.free(a)  # frees the node whose completion this is
        done.set()

    cb = pn.CALL_FN(complete)
    _keep.append(cb)
    assert lib.peernet_call_async(a, ref(kb), b"echo", b"x", 1, 5000, cb, None) == pn.OK
    assert done.wait(10)
