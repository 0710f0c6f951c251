"""Fixtures: nodes on 127.0.0.1 with short timers, closed at the end of each test."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import peernet


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Polls `cond` until it is truthy, failing the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


NodeFactory = Callable[..., peernet.Node]


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[NodeFactory]:
    nodes: list[peernet.Node] = []
    count = [0]

    def make(name: str = "", **kw: Any) -> peernet.Node:
        count[0] += 1
        kw.setdefault("listen", "127.0.0.1:0")
        kw.setdefault("heartbeat", (0.5, 2.0))
        n = peernet.Node(tmp_path / (name or f"node{count[0]}"), **kw)
        nodes.append(n)
        return n

    yield make
    for n in nodes:
        n.close()


@pytest.fixture
def pair(make_node: NodeFactory) -> tuple[peernet.Node, peernet.Node]:
    """Two nodes that trust each other, `a` connected to `b`."""
    a = make_node("a")
    b = make_node("b")
    a.trust(b.key, label="b")
    b.trust(a.key, label="a")
    assert b.address is not None
    a.connect(b.key, b.address, timeout=5.0)
    b.wait_connected(a.key, timeout=5.0)
    return a, b
