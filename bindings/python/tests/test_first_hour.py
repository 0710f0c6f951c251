"""The first hour with peernet: paths, the command line's conventions, and what a
refused or failed call tells the user."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import peernet
from conftest import free_udp_port, wait_until
from peernet import cli
from test_cli import PEERNET, Proc, key_of, procs, run

__all__ = ["procs"]  # the fixture, imported for the tests below


def test_node_expands_tilde_and_takes_pathlike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with peernet.Node("~/.local/share/myapp/peernet", listen=None) as n:
        key = n.key
    assert (tmp_path / "home/.local/share/myapp/peernet/identity.key").exists() or any(
        (tmp_path / "home/.local/share/myapp/peernet").iterdir()
    )
    assert not (tmp_path / "~").exists()
    with peernet.Node(tmp_path / "home/.local/share/myapp/peernet", listen=None) as n:
        assert n.key == key  # a pathlib.Path names the same directory

    class Custom(os.PathLike[str]):
        def __fspath__(self) -> str:
            return "~/.local/share/myapp/peernet"

    with peernet.Node(Custom(), listen=None) as n:
        assert n.key == key
    with pytest.raises(TypeError):
        peernet.Node(b"/tmp/x", listen=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        peernet.Node("", listen=None)


def test_cli_dir_expands_tilde_and_comes_after_the_subcommand(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    env.pop("PEERNET_DIR", None)

    def go(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*PEERNET, *args], capture_output=True, text=True, timeout=30,
                              env=env, cwd=tmp_path)

    a = go("--dir", "~/one", "id")
    b = go("id", "--dir", "~/one")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout
    assert f"data dir     {tmp_path / 'home' / 'one'}" in a.stdout
    assert not (tmp_path / "~").exists()
    # after a nested subcommand too, and the subcommand's --dir wins over the global one
    t = go("--dir", "~/other", "trust", "add", "ab" * 32, "--dir", "~/one")
    assert t.returncode == 0, t.stderr
    assert "ab" * 32 in go("trust", "list", "--dir", "~/one").stdout
    assert not (tmp_path / "home" / "other").exists()
    # PEERNET_DIR is the default
    env["PEERNET_DIR"] = str(tmp_path / "home" / "one")
    assert go("id").stdout == a.stdout


def _parsers(p: argparse.ArgumentParser, path: str = "peernet") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sp in action.choices.items():
                yield from _parsers(sp, f"{path} {name}")


def test_help_describes_every_option_and_its_default() -> None:
    checked = 0
    for path, p in _parsers(cli.build_parser()):
        text = " ".join(p.format_help().split())
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"{path} {action.option_strings or action.dest} has no description"
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                assert "default" in (action.help or "") or f"(default: {action.default})" in text, (
                    f"{path} {action.option_strings} does not show its default")
            checked += 1
        assert "PEERNET_DIR" in text, path
        assert "--dir" in text, path
    assert checked > 30
    r = run("serve", "--help")
    out = " ".join(r.stdout.split())
    assert "(default: [::]:7100)" in out and "exit status" in out


def test_cli_mdns_is_on_only_with_default_discovery_targets() -> None:
    """Issue 18: the CLI advertises over mDNS where its discovery uses the real
    interfaces, never with explicit (loopback) targets unless asked."""
    import argparse

    from peernet import Mdns, UdpDiscovery
    from peernet._cli_mdns import choose

    ns = argparse.Namespace
    assert choose(ns(mdns=None), UdpDiscovery()) == Mdns()
    assert choose(ns(mdns=None), UdpDiscovery(broadcast=["127.255.255.255"])) is None
    assert choose(ns(mdns=None), None) is None
    assert choose(ns(mdns=False), UdpDiscovery()) is None
    assert choose(ns(mdns=True), None) == Mdns()


def test_chat_on_loopback_listens_on_loopback() -> None:
    from peernet.chat import default_listen

    assert default_listen(["127.255.255.255"]) == "127.0.0.1:0"
    assert default_listen(["127.255.255.255:4041", "::1"]) == "127.0.0.1:0"
    assert default_listen(["192.168.1.255"]) == "[::]:0"
    assert default_listen(None) == "[::]:0"


def test_chat_broadcast_on_loopback_prints_a_loopback_listener(tmp_path: Path, procs: list[Proc]) -> None:
    port = str(free_udp_port())
    p = Proc([*PEERNET, "--dir", str(tmp_path / "c"), "chat", "--port", port, "--interval", "0.2",
              "--broadcast", "127.255.255.255", "--name", "solo"])
    procs.append(p)
    assert "listening on 127.0.0.1:" in p.expect("you are solo")
    p.write("/peers")
    p.expect("(no peers known yet)")
    p.write("/quit")
    assert p.p.wait(timeout=15) == 0


class _Chunks(io.TextIOBase):
    """stdout and stderr as one terminal: records each write."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.lock = threading.Lock()

    def write(self, s: str) -> int:
        with self.lock:
            self.chunks.append(s)
        return len(s)


def test_log_lines_never_start_inside_an_output_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from peernet.chat import _out, install_log_handler

    term = _Chunks()
    monkeypatch.setattr(sys, "stdout", term)
    monkeypatch.setattr(sys, "stderr", term)
    handler = install_log_handler()
    log = logging.getLogger("peernet.test")
    try:
        def talk() -> None:
            for i in range(200):
                _out("key", "ab" * 32, "line", i)

        def chatter() -> None:
            for i in range(200):
                log.warning("log record %d", i)

        ts = [threading.Thread(target=talk), threading.Thread(target=chatter)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
    finally:
        logging.getLogger().removeHandler(handler)
    # Every write is one whole line, so nothing can land in the middle of another.
    assert all(c.endswith("\n") and c.count("\n") == 1 for c in term.chunks), term.chunks[:6]
    assert len(term.chunks) == 400


def test_serve_names_the_refused_client_and_the_command(tmp_path: Path, procs: list[Proc]) -> None:
    server = Proc([*PEERNET, "--dir", str(tmp_path / "server"), "serve", "--listen", "127.0.0.1:0",
                   "--duration", "60"])
    procs.append(server)
    key = server.expect("key ").split()[1]
    addr = server.expect("listening ").split()[1]
    client_key = key_of(tmp_path / "client")
    r = run("--dir", str(tmp_path / "client"), "call", key, "echo", "x", "--addr", addr, "--trust")
    assert r.returncode == 1
    # the client: its own key and what the server's operator must run
    assert "refused by them" in r.stderr, r.stderr
    assert f"Our key is {client_key}" in r.stderr
    assert f"peernet trust add {client_key}" in r.stderr
    # the server: the client's full key and the exact command
    line = server.expect("refused untrusted client")
    assert f"key {client_key}" in line and f"trust add {client_key}" in line, line
    # The refusal proved the key right: it stays trusted for the retry.
    assert key in run("--dir", str(tmp_path / "client"), "trust", "list").stdout


def test_call_says_why_it_cannot_connect(tmp_path: Path, procs: list[Proc]) -> None:
    d = str(tmp_path / "client")
    other = "cd" * 32
    # not trusted by us
    r = run("--dir", d, "call", other, "echo", "x", "--timeout", "0.5", "--no-mdns")
    assert r.returncode == 1 and "is not trusted by us" in r.stderr, r.stderr
    assert f"peernet trust add {other}" in r.stderr
    # trusted, but nothing announces it and no --addr
    assert run("--dir", d, "trust", "add", other).returncode == 0
    r = run("--dir", d, "call", other, "echo", "x", "--timeout", "0.5",
            "--discovery-port", str(free_udp_port()), "--broadcast", "127.255.255.255")
    assert r.returncode == 1 and "no address known" in r.stderr, r.stderr
    assert "Timeout" not in r.stderr.split(":")[1]


def test_call_finds_a_discovering_server_without_addr(tmp_path: Path, procs: list[Proc]) -> None:
    client_key = key_of(tmp_path / "client")
    port = str(free_udp_port())
    server = Proc([*PEERNET, "--dir", str(tmp_path / "server"), "serve", "--listen", "127.0.0.1:0",
                   "--trust", client_key, "--discovery", "--discovery-port", port,
                   "--discovery-interval", "0.2", "--broadcast", "127.255.255.255", "--duration", "60"])
    procs.append(server)
    key = server.expect("key ").split()[1]
    server.expect("listening ")
    r = run("--dir", str(tmp_path / "client"), "call", key, "echo", "found", "--trust",
            "--timeout", "10", "--discovery-port", port, "--broadcast", "127.255.255.255")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "found"


def test_call_trust_of_a_wrong_key_is_not_kept(tmp_path: Path, procs: list[Proc]) -> None:
    server = Proc([*PEERNET, "--dir", str(tmp_path / "server"), "serve", "--listen", "127.0.0.1:0",
                   "--duration", "60"])
    procs.append(server)
    server.expect("key ")
    addr = server.expect("listening ").split()[1]
    wrong = "ef" * 32  # a typo: not the server's key
    d = str(tmp_path / "client")
    r = run("--dir", d, "call", wrong, "echo", "x", "--addr", addr, "--trust")
    assert r.returncode == 1 and "wrong key" in r.stderr, r.stderr
    assert wrong not in run("--dir", d, "trust", "list").stdout
    # nobody there at all: not kept either
    r = run("--dir", d, "call", wrong, "echo", "x", "--addr", "127.0.0.1:9", "--trust", "--timeout", "2")
    assert r.returncode == 1
    assert wrong not in run("--dir", d, "trust", "list").stdout


def test_refused_event_names_the_untrusted_client(tmp_path: Path) -> None:
    with peernet.Node(tmp_path / "server", listen="127.0.0.1:0") as server, peernet.Node(
        tmp_path / "client", listen=None
    ) as client:
        events = server.events(timeout=10)
        client.trust(server.key)
        assert server.address is not None
        with pytest.raises(peernet.UntrustedPeer, match="refused"):
            client.connect(server.key, server.address, timeout=5.0)
        ev = next((e for e in events if e.kind == "refused"), None)
        events.close()
        assert ev is not None, "no refused event within 10 s"
        assert ev.key == client.key
        assert ev.address is not None and ev.address.startswith("127.0.0.1:")
        assert "not in the trust store" in ev.reason


def test_a_call_right_after_an_inbound_connection_does_not_break_the_handshake(tmp_path: Path) -> None:
    """The README snippet's other failure: the responder's wait_connected returned as the
    connection registered, and a call it made at once could go out before the confirming
    Ping, so the initiator failed the handshake ("confirmation was not a Ping")."""
    with peernet.Node(tmp_path / "a", listen="127.0.0.1:0") as a, peernet.Node(
        tmp_path / "b", listen="127.0.0.1:0"
    ) as b:
        a.trust(b.key)
        b.trust(a.key)
        a.expose("hi", lambda peer, body: b"hi")
        assert b.address is not None
        failures: list[str] = []
        for _ in range(30):
            def call_back() -> None:
                try:
                    b.wait_connected(a.key, timeout=5.0)
                    b.call(a.key, "hi", timeout=5.0)
                except peernet.PeerNetError as e:
                    failures.append(f"b: {type(e).__name__}: {e}")

            t = threading.Thread(target=call_back)
            t.start()
            try:
                a.connect(b.key, b.address, timeout=5.0)
            except peernet.PeerNetError as e:
                failures.append(f"a: {type(e).__name__}: {e}")
            t.join(10)
            for n, k in ((a, b.key), (b, a.key)):
                with contextlib.suppress(peernet.NotConnected):
                    n.disconnect(k)
            wait_until(lambda: not a.is_connected(b.key) and not b.is_connected(a.key),
                       what="both sides disconnected")
        assert failures == [], failures[:5]
