"""gateway.sdnotify against a real datagram socket standing in for systemd's NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import sdnotify
from gateway.clock import ManualClock


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_nothing_happens_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert sdnotify.notify_ready() is False
    assert sdnotify.watchdog_interval_s() is None


def test_ready_and_stopping_reach_the_socket(notify_socket: socket.socket) -> None:
    assert sdnotify.notify_ready("3 components running")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=3 components running"
    assert sdnotify.notify_stopping()
    assert notify_socket.recv(4096) == b"STOPPING=1"


async def test_watchdog_pings_at_half_the_timeout(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval_s() == 30.0
    clock = ManualClock()
    task = asyncio.create_task(sdnotify.watchdog_loop(clock))
    await asyncio.sleep(0)
    assert notify_socket.recv(64) == b"WATCHDOG=1"
    notify_socket.setblocking(False)
    clock.advance(29)
    await asyncio.sleep(0)
    with pytest.raises(BlockingIOError):
        notify_socket.recv(64)
    clock.advance(1)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert notify_socket.recv(64) == b"WATCHDOG=1"
    task.cancel()


def test_watchdog_meant_for_another_process_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert sdnotify.watchdog_interval_s() is None
