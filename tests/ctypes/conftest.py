"""Fixtures: nodes on 127.0.0.1 with a short heartbeat, freed after each test."""

import ctypes as C
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import peernet_abi as pn  # noqa: E402


class Nodes:
    def __init__(self, root):
        self.root = root
        self.live = []

    def config(self, name, auto_connect=False):
        cfg = pn.lib.peernet_config_new(str(self.root / name).encode())
        assert cfg, pn.last_error()
        pn.check(pn.lib.peernet_config_set_listen(cfg, b"127.0.0.1:0"))
        pn.check(pn.lib.peernet_config_set_heartbeat(cfg, 200, 2000))
        pn.check(pn.lib.peernet_config_set_auto_connect(cfg, auto_connect))
        return cfg

    def start(self, name, cfg=None, **kw):
        own = cfg is None
        if own:
            cfg = self.config(name, **kw)
        node = pn.NodeP()
        status = pn.lib.peernet_node_start(cfg, C.byref(node))
        if own:
            pn.lib.peernet_config_free(cfg)
        pn.check(status)
        self.live.append(node)
        return node

    def free(self, node):
        if node in self.live:
            self.live.remove(node)
        pn.lib.peernet_node_free(node)

    def close_all(self):
        for n in self.live:
            pn.lib.peernet_node_free(n)
        self.live = []


def key_of(node):
    k = pn.Key()
    pn.lib.peernet_node_key(node, C.byref(k))
    return k


def addr_of(node):
    return f"127.0.0.1:{pn.lib.peernet_node_port(node)}".encode()


@pytest.fixture
def nodes(tmp_path):
    n = Nodes(tmp_path)
    yield n
    n.close_all()


@pytest.fixture
def pair(nodes):
    """(a, b, ka, kb): two nodes that trust each other, a connected to b."""
    a, b = nodes.start("a"), nodes.start("b")
    ka, kb = key_of(a), key_of(b)
    pn.check(pn.lib.peernet_trust(a, C.byref(kb), b"b"))
    pn.check(pn.lib.peernet_trust(b, C.byref(ka), b"a"))
    pn.check(pn.lib.peernet_connect(a, C.byref(kb), addr_of(b), 5000))
    pn.check(pn.lib.peernet_wait_connected(b, C.byref(ka), 5000))
    return a, b, ka, kb
