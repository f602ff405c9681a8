"""Listen ports for the servers the e2e suite and the bench start on 127.0.0.1.

A port taken from the kernel's ephemeral range (bind to port 0, close, hand the number to Envoy) can
be given by the kernel to an outgoing connection (a load generator's, Envoy's to its upstream) before
the server it was meant for binds it: a fresh-clone `make bench` once failed so at its end. Ports
here come from below that range, are checked free, and are never handed out twice by one process.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_HANDED_OUT: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux default 32768–60999)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A port nothing listens on, below the ephemeral range, not handed out before by this process."""
    low, _ = ephemeral_range()
    first = 20000 if low > 21000 else 1024
    # Processes started together (the bench's and a test run's) start at different places.
    start = first + os.getpid() % 500 * 2
    for port in [*range(start, low), *range(first, start)]:
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port below the ephemeral range (which starts at {low})")
