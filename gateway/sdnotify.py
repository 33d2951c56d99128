"""systemd readiness and watchdog notifications (the `NOTIFY_SOCKET` datagram protocol).

Without `NOTIFY_SOCKET` (not started by systemd with `Type=notify`) every call does nothing.
The supervisor calls `notify_ready()` once its components are started, runs `watchdog_loop()`
as a task on the event loop (a blocked loop stops the pings, and systemd restarts the service
after `WatchdogSec`), and calls `notify_stopping()` when shutdown begins.
"""

from __future__ import annotations

import os
import socket

from gateway.clock import Clock


def _address() -> str | None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return None
    if addr.startswith("@"):  # abstract namespace socket
        return "\0" + addr[1:]
    return addr


def notify(state: str) -> bool:
    """Send one notification, e.g. `READY=1`; False when not under systemd or on error."""
    addr = _address()
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), addr)
    except OSError:
        return False
    return True


def notify_ready(status: str = "running") -> bool:
    return notify(f"READY=1\nSTATUS={status}")


def notify_stopping() -> bool:
    return notify("STOPPING=1")


def notify_status(status: str) -> bool:
    return notify(f"STATUS={status}")


def watchdog_interval_s() -> float | None:
    """Half the watchdog timeout systemd asked for, or None when there is no watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None


async def watchdog_loop(clock: Clock) -> None:
    """Ping the watchdog from the event loop until cancelled (returns at once without one)."""
    interval = watchdog_interval_s()
    if interval is None:
        return
    while True:
        notify("WATCHDOG=1")
        await clock.sleep(interval)
