"""A Mosquitto broker on a free loopback port, configured as `deploy/mosquitto/campus-edge.conf`.

Used by the demo and by the test fixtures. The broker can be stopped, killed and started again
on the same port with the same persistence directory, so tests can restart it mid-stream.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DEPLOY_CONF = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "campus-edge.conf"
_REPLACED = (
    "listener",
    "persistence_location",
    "log_dest",
    "include_dir",
    "allow_anonymous",
    "user",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` distinct free ports (each held until all are found, so none repeats)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s") from None
            time.sleep(0.02)


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


def broker_config(port: int, workdir: Path, extra: str = "", anonymous: bool = True) -> str:
    """The deployed configuration with this broker's listener, persistence and log."""
    keep = [
        line
        for line in DEPLOY_CONF.read_text().splitlines()
        if not line.strip().startswith(_REPLACED)
    ]
    keep += [
        f"listener {port} 127.0.0.1",
        f"allow_anonymous {'true' if anonymous else 'false'}",
        f"persistence_location {workdir}/",
        f"log_dest file {workdir / 'mosquitto.log'}",
        # Started as root, Mosquitto drops to the `mosquitto` user, which cannot write to a
        # private working directory: stay who we are.
        f"user {getpass.getuser()}",
        extra,
    ]
    return "\n".join(keep) + "\n"


class Mosquitto:
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra_conf: str = "",
        *,
        anonymous: bool = True,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(broker_config(self.port, workdir, extra_conf, anonymous))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port, timeout=10)
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"mosquitto did not start:\n{self.log}") from None

    def stop(self, timeout: float = 10.0) -> None:
        """Clean stop: Mosquitto writes its persistence database on the way out."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reap()

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._reap()

    def restart(self) -> None:
        self.stop()
        self.start()

    def _reap(self) -> None:
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None
