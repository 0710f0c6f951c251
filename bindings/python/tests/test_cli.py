"""The command line (`peernet` and `python -m peernet`) and nodes in two processes."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import peernet
from conftest import free_udp_port
from peernet.chat import Offer, Pairing

PEERNET = [sys.executable, "-m", "peernet"]


def run(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PEERNET, *args], capture_output=True, text=True, timeout=timeout)


class Proc:
    """A child process whose stdout lines are read by a thread, for waits with deadlines."""

    def __init__(self, args: list[str]) -> None:
        self.p = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, fragment: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                err = self.p.stderr.read() if self.p.poll() is not None and self.p.stderr else ""
                pytest.fail(f"no line with {fragment!r}; saw {self.seen!r} {err}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if fragment in line:
                return line

    def write(self, line: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def stop(self) -> int:
        if self.p.poll() is None:
            self.p.terminate()
        try:
            return self.p.wait(timeout=15)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
            for f in (self.p.stdin, self.p.stdout, self.p.stderr):
                if f is not None:
                    f.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    ps: list[Proc] = []
    yield ps
    for p in ps:
        p.stop()


def key_of(d: Path) -> str:
    r = run("--dir", str(d), "id")
    assert r.returncode == 0, r.stderr
    return r.stdout.split()[1]


def test_id_is_stable_and_console_script_exists(tmp_path: Path) -> None:
    k1 = key_of(tmp_path / "me")
    k2 = key_of(tmp_path / "me")
    assert k1 == k2 and len(k1) == 64
    script = Path(sys.executable).parent / "peernet"
    if script.exists():  # installed entry point
        r = subprocess.run([str(script), "--dir", str(tmp_path / "me"), "id"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and k1 in r.stdout


def test_trust_add_list_remove(tmp_path: Path) -> None:
    d = str(tmp_path / "me")
    other = "ab" * 32
    r = run("--dir", d, "trust", "add", other, "--label", "laptop", "--rpc")
    assert r.returncode == 0 and "trusted" in r.stdout
    r = run("--dir", d, "trust", "list")
    assert other in r.stdout and "laptop" in r.stdout and "rpc" in r.stdout
    r = run("--dir", d, "trust", "remove", other)
    assert r.returncode == 0
    r = run("--dir", d, "trust", "list")
    assert other not in r.stdout
    r = run("--dir", d, "trust", "remove", other)
    assert r.returncode == 1
    r = run("--dir", d, "trust", "add", "not-hex")
    assert r.returncode == 1 and "ValueError" in r.stderr


def test_trust_add_with_addresses(tmp_path: Path) -> None:
    """Issue 18: `trust add KEY --addr host:port` keeps manual addresses on the entry (in
    canonical form, in the trust file); a bad one is refused naming the form."""
    d = str(tmp_path / "me")
    other = "ab" * 32
    r = run("--dir", d, "trust", "add", other, "--addr", "Laptop.Example:7100", "--addr", "10.0.0.2:7100")
    assert r.returncode == 0, r.stderr
    assert "addresses laptop.example:7100, 10.0.0.2:7100" in r.stdout, r.stdout
    r = run("--dir", d, "trust", "list")
    assert "addr laptop.example:7100,10.0.0.2:7100" in r.stdout, r.stdout
    text = (Path(d) / "trusted_peers").read_text()
    assert text.startswith("# PeerNet trust store, format 3") and "laptop.example:7100" in text
    r = run("--dir", d, "trust", "add", other, "--addr", "no-port")
    assert r.returncode == 1 and "host:port" in r.stderr, r.stderr
    with peernet.Node(d, listen=None, auto_connect=False) as n:
        e = n.trusted()[0]
        assert e.manual_addresses == ("laptop.example:7100", "10.0.0.2:7100")
        assert n.remove_address(other, "LAPTOP.example:7100") is True
        assert n.trusted()[0].manual_addresses == ("10.0.0.2:7100",)


def test_offline_commands_refuse_a_directory_a_node_holds(tmp_path: Path, procs: list[Proc]) -> None:
    """`trust remove` beside a running node used to succeed and then be
    undone by the node's next write. Now it fails, changes nothing, and says what to do."""
    d = str(tmp_path / "held")
    other = "cd" * 32
    assert run("--dir", d, "trust", "add", other).returncode == 0
    server = Proc([*PEERNET, "--dir", d, "serve", "--listen", "127.0.0.1:0"])
    procs.append(server)
    server.expect("listening")
    for args in (("trust", "remove", other), ("trust", "add", "ef" * 32), ("id",)):
        r = run("--dir", d, *args)
        print(" ".join(args), "->", r.returncode, r.stderr.strip())
        assert r.returncode == 1, r.stdout
        assert f"a node (pid {server.p.pid}) holds {d}; stop it" in r.stderr, r.stderr
        assert ("Node.untrust" if args[0] == "trust" else "Node.key") in r.stderr, r.stderr
    r = run("--dir", d, "serve", "--listen", "127.0.0.1:0", "--duration", "0")
    assert f"a node (pid {server.p.pid}) already runs on {d}" in r.stderr, r.stderr
    server.stop()
    # Nothing changed while it ran; now the removal goes through.
    assert other in run("--dir", d, "trust", "list").stdout
    assert run("--dir", d, "trust", "remove", other).returncode == 0
    assert other not in run("--dir", d, "trust", "list").stdout


def test_second_api_node_on_a_dir_raises_busy(tmp_path: Path) -> None:
    with peernet.Node(tmp_path / "one", listen=None):
        with pytest.raises(peernet.Busy) as e:
            peernet.Node(tmp_path / "one", listen=None)
        assert e.value.pid == os.getpid()
        assert e.value.path == str(tmp_path / "one")
        assert str(os.getpid()) in str(e.value)
    peernet.Node(tmp_path / "one", listen=None).close()


def test_serve_and_call_in_two_processes(tmp_path: Path, procs: list[Proc]) -> None:
    client_dir = tmp_path / "client"
    client_key = key_of(client_dir)
    server = Proc([*PEERNET, "--dir", str(tmp_path / "server"), "serve", "--listen", "127.0.0.1:0",
                   "--trust", client_key, "--duration", "60"])
    procs.append(server)
    key = server.expect("key ").split()[1]
    addr = server.expect("listening ").split()[1]
    r = run("--dir", str(client_dir), "call", key, "echo", "hello there", "--addr", addr, "--trust")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "hello there"
    r = run("--dir", str(client_dir), "call", key, "ping", "", "--addr", addr)
    assert r.stdout.strip() == "pong"
    r = run("--dir", str(client_dir), "call", key, "missing", "x", "--addr", addr)
    assert r.returncode == 1 and "NoSuchHandler" in r.stderr
    server.expect("event connected")
    assert server.stop() == 0


def test_call_untrusted_server_refuses(tmp_path: Path, procs: list[Proc]) -> None:
    server = Proc([*PEERNET, "--dir", str(tmp_path / "server"), "serve", "--listen", "127.0.0.1:0", "--duration", "60"])
    procs.append(server)
    key = server.expect("key ").split()[1]
    addr = server.expect("listening ").split()[1]
    r = run("--dir", str(tmp_path / "c"), "call", key, "echo", "x", "--addr", addr, "--trust")
    assert r.returncode == 1 and "refused by them" in r.stderr


def test_api_nodes_in_two_processes(tmp_path: Path, procs: list[Proc]) -> None:
    script = textwrap.dedent(
        """
        import sys, peernet
        n = peernet.Node(sys.argv[1], listen="127.0.0.1:0")
        n.trust(peernet.Key.from_hex(sys.argv[2]))
        n.expose("upper", lambda peer, body: body.upper())
        print(n.key.hex(), n.address, flush=True)
        sys.stdin.readline()  # until the parent closes stdin
        n.close()
        print("closed", flush=True)
        """
    )
    with peernet.Node(tmp_path / "parent", listen="127.0.0.1:0") as me:
        child = Proc([sys.executable, "-c", script, str(tmp_path / "child"), me.key.hex()])
        procs.append(child)
        key_hex, addr = child.expect(" ").split()
        me.trust(key_hex)
        me.connect(key_hex, addr)
        assert me.call(key_hex, "upper", b"across processes") == b"ACROSS PROCESSES"
        assert child.p.stdin is not None
        child.p.stdin.close()
        child.expect("closed")


def chat(tmp_path: Path, who: str, port: str, *extra: str) -> Proc:
    return Proc([*PEERNET, "--dir", str(tmp_path / who), "chat", "--listen", "127.0.0.1:0",
                 "--port", port, "--interval", "0.2", "--broadcast", "127.255.255.255",
                 "--name", who, *extra])


def fingerprint_of(p: Proc, who: str) -> str:
    return p.expect(f"you are {who}").split("fingerprint ")[1].split(" ")[0]


def announcer(tmp_path: Path, port: str) -> peernet.Node:
    """Another key announcing itself on the chat's discovery port: to the person at the
    keyboard, just one more offer (a forged one, say, shown before the real peer's)."""
    return peernet.Node(tmp_path / "forger", listen="127.0.0.1:0",
                        discovery=peernet.UdpDiscovery(port=int(port), interval=0.2,
                                                       broadcast=["127.255.255.255"]))


def test_chat_trusts_only_the_peer_named(tmp_path: Path, procs: list[Proc]) -> None:
    """a forged announcement shown first is not trusted when the user
    accepts the real peer; "y" and /quit are no answers."""
    port = str(free_udp_port())
    with announcer(tmp_path, port) as forger:
        forged = forger.key.fingerprint
        ann = chat(tmp_path, "ann", port)
        procs.append(ann)
        ann_fp = fingerprint_of(ann, "ann")
        assert forged in ann.expect("? pair with fingerprint " + forged)  # the forged offer comes first
        ben = chat(tmp_path, "ben", port)
        procs.append(ben)
        ben_fp = fingerprint_of(ben, "ben")
        prompt = ann.expect("? pair with fingerprint " + ben_fp)
        assert ann_fp in prompt  # both fingerprints shown, for comparison
        ann.write("y")  # the old habit, with ben's offer on screen
        ann.write("/trust " + ben_fp)
        ann.expect("* paired with fingerprint " + ben_fp)
        assert not [line for line in ann.seen if line.startswith("* paired with fingerprint " + forged)]
        assert [line for line in ann.seen if '"y" is not an answer' in line]
        assert "to accept, type: /trust " + ben_fp in prompt
        ben.expect("? pair with fingerprint " + ann_fp)
        ben.write("/trust " + ann_fp.upper())  # either case
        ben.expect("* paired with fingerprint " + ann_fp)
        ann.expect(f"* connected to ben (fingerprint {ben_fp})")
        ben.expect(f"* connected to ann (fingerprint {ann_fp})")
        ann.write("hello ben")
        # The chat name became the trust label: messages and /peers show it.
        assert ben.expect("hello ben") == f"[ann (fingerprint {ann_fp})] ann: hello ben"
        ben.write("/peers")
        assert ben.expect(f"fingerprint {ann_fp} connected").startswith(f"  ann fingerprint {ann_fp}")
        ann.write("/pending")
        ann.expect("offer from fingerprint " + forged)  # still open, never accepted
        ann.write("/quit")  # with an offer open: it ends the chat, it answers nothing
        assert ann.p.wait(timeout=15) == 0
        ben.write("/quit")
        assert ben.p.wait(timeout=15) == 0
        forger_hex = forger.key.hex()
    trusted_by_ann = run("--dir", str(tmp_path / "ann"), "trust", "list").stdout
    assert forger_hex not in trusted_by_ann
    assert key_of(tmp_path / "ben") in trusted_by_ann
    assert "label ben" in trusted_by_ann
    assert forger_hex not in run("--dir", str(tmp_path / "ben"), "trust", "list").stdout


def test_chat_offers_expire(tmp_path: Path, procs: list[Proc]) -> None:
    port = str(free_udp_port())
    with announcer(tmp_path, port) as forger:
        fp = forger.key.fingerprint
        ann = chat(tmp_path, "ann", port, "--pair-timeout", "0.5")
        procs.append(ann)
        ann.expect("? pair with fingerprint " + fp)
        ann.expect(f"* pairing offer from fingerprint {fp} expired")
        ann.write("/trust " + fp)
        ann.expect("! no open pairing offer from " + fp)
        ann.write("/scan")  # offered again, as a new offer
        ann.expect("? pair with fingerprint " + fp)
        ann.write("/quit")
        assert ann.p.wait(timeout=15) == 0
        forger_hex = forger.key.hex()
    assert forger_hex not in run("--dir", str(tmp_path / "ann"), "trust", "list").stdout


def test_chat_offer_ends_when_the_peer_stops_announcing(tmp_path: Path, procs: list[Proc]) -> None:
    port = str(free_udp_port())
    forger = announcer(tmp_path, port)
    with forger:
        fp = forger.key.fingerprint
        forger_hex = forger.key.hex()
        ann = chat(tmp_path, "ann", port)
        procs.append(ann)
        ann.expect("? pair with fingerprint " + fp)
    # The announcer is gone: after 3 silent intervals the offer is withdrawn.
    ann.expect(f"* pairing offer from fingerprint {fp} withdrawn")
    ann.write("/trust " + fp)
    ann.expect("! no open pairing offer from " + fp)
    ann.write("/quit")
    assert ann.p.wait(timeout=15) == 0
    assert forger_hex not in run("--dir", str(tmp_path / "ann"), "trust", "list").stdout


def test_pairing_offers_name_their_peer_and_end() -> None:
    """The offer book on its own, with a fake clock."""
    now = [100.0]
    book = Pairing(ttl=60, clock=lambda: now[0])
    k1, k2 = peernet.Key(bytes([1]) * 32), peernet.Key(bytes([2]) * 32)
    assert book.offer(k1, "127.0.0.1:1") is not None
    assert book.offer(k1, "127.0.0.1:1") is None  # one offer per peer
    now[0] += 30
    assert book.offer(k2, "127.0.0.1:2") is not None
    for word in ("", "y", "yes", k1.fingerprint[:8], "/quit"):
        assert isinstance(book.accept(word), str), word  # only a whole name accepts
    now[0] += 30  # k1's offer is 60 s old now
    assert isinstance(book.accept(k1.fingerprint), str)
    assert [o.key for o in book.pending()] == [k2]
    got = book.accept(" " + k2.hex().upper() + " ")
    assert isinstance(got, Offer) and got.key == k2
    assert isinstance(book.accept(k2.fingerprint), str)  # accepted once
    assert book.offer(k1, None) is None  # expired, not offered again by itself...
    book.rescan()
    assert book.offer(k1, None) is not None  # ...until /scan
    assert book.withdraw(k1) is not None and book.pending() == []
    assert book.offer(k1, None) is not None  # announced again after it was lost


def test_demo_runs_to_the_end(tmp_path: Path) -> None:
    t = time.monotonic()
    r = subprocess.run([*PEERNET, "demo"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "TMPDIR": str(tmp_path)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Demo finished" in r.stdout
    for word in ("discovered", "connected", "NoSuchHandler", "Forbidden", "HandlerFailed",
                 "UntrustedPeer", "math.hypot(3, 4) -> 5.0", "reconnected",
                 "bob's sha256 matches", "checked by SHA-256"):
        assert word in r.stdout, word
    assert time.monotonic() - t < 30
    assert list(tmp_path.iterdir()) == []  # the demo's data dirs are removed
