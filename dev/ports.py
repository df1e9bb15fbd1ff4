"""Loopback ports of the local stack, its emulators, the benchmarks and the tests: one place for each question."""
from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


# Ports the kernel hands to outgoing connections (Linux's default range when it cannot be read). A listening port
# chosen inside it can be taken, between the choice and the server's bind, as the local end of any client
# connection on the machine (the stack's own to PostgreSQL, the emulators, the fake Google): the server then fails
# with "address already in use". So ports are chosen below it.
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(x) for x in _EPHEMERAL_RANGE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32_768, 60_999


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now and outside the range of outgoing connections' ports."""
    low, _ = ephemeral_range()
    if low - _LOWEST > 1_000:
        chooser = random.SystemRandom()
        for _ in range(100):
            port = chooser.randrange(_LOWEST, low)
            if not port_taken(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a machine with no room below the range
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def port_taken(port: int) -> bool:
    """Whether a server could not bind 127.0.0.1:port now. Connections of a stopped server left in TIME_WAIT do not
    count: the servers bind with SO_REUSEADDR, and so does this probe."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def accepts_connections(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(port: int, process: subprocess.Popen | None, timeout: float, name: str) -> None:
    """Until something listens on 127.0.0.1:port; RuntimeError when `process` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} during start-up")
        if accepts_connections(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not open port {port} within {timeout:.0f} s")


def wait_port_free(port: int, timeout: float) -> None:
    """Until 127.0.0.1:port can be bound again; RuntimeError when it stays taken."""
    deadline = time.monotonic() + timeout
    while port_taken(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} is still taken")
        time.sleep(0.1)
