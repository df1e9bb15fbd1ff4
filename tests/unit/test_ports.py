"""The local stack's ports are chosen where outgoing connections never take them (Linux: ip_local_port_range,
https://www.kernel.org/doc/html/latest/networking/ip-sysctl.html)."""
from __future__ import annotations

import socket

from dev import ports


def test_chosen_ports_are_free_and_below_the_range_of_outgoing_connections():
    low, _ = ports.ephemeral_range()
    chosen = {ports.free_port() for _ in range(50)}
    assert all(ports._LOWEST <= port < low for port in chosen)
    assert len(chosen) > 40  # random, so two stacks starting at once seldom pick alike
    for port in list(chosen)[:5]:
        with socket.socket() as server:
            server.bind((ports.LOOPBACK, port))


def test_a_taken_port_is_passed_over(monkeypatch):
    with socket.socket() as held:
        held.bind((ports.LOOPBACK, ports.free_port()))
        held.listen()
        taken = held.getsockname()[1]
        picks = iter([taken, taken + 1])
        monkeypatch.setattr(ports.random.SystemRandom, "randrange", lambda self, a, b: next(picks))
        assert ports.free_port() == taken + 1
