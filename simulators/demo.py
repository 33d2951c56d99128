"""`campus-edge demo`: a simulated dormitory building end to end, with the live cockpit.

Everything runs on loopback as separate processes, as on a real edge box: a Mosquitto broker,
the building's Modbus converters, two cameras (a gate lane and the lobby) served as HTTP MJPEG,
the gates and terminals publishing over MQTT, and the gateway itself on the embedded store.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from simulators.broker import Mosquitto, free_port, free_ports

BUILDING = "demo"
FLOORS = 6
ROOMS = 20
CAMERA_FRAME = (640, 480)


def _free_port_run(n: int) -> int:
    """The first of `n` consecutive free loopback ports."""
    for _ in range(200):
        base = free_port()
        if base + n >= 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"found no {n} consecutive free ports")


def _wait_for(what: str, cond: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Processes:
    """Children of the demo, stopped in reverse order of start."""

    logs: Path
    running: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        cmd = [sys.executable, "-m", "gateway.cli", *args]
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.running.append((name, proc, log))

    def check(self) -> None:
        for name, proc, _ in self.running:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {proc.returncode}: see {self.logs / name}.log"
                )

    def stop_all(self) -> None:
        for _name, proc, log in reversed(self.running):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
        self.running.clear()


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    """`campus-edge ARGS` in a child process; its standard output, or RuntimeError saying what
    it printed if it failed."""
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"campus-edge {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def _gateway_ready(log: Path) -> bool:
    if not log.exists():
        return False
    return any('"gateway ready"' in line for line in log.read_text(errors="replace").splitlines())


def _cameras(lane_port: int, lobby_port: int) -> dict[str, Any]:
    return {
        "enabled": True,
        "cameras": [
            {
                "id": "cam-lane-1",
                "url": f"http://127.0.0.1:{lane_port}/video.mjpg",
                "floor": 1,
                "zone": "entrance",
                # The simulated people walk down and up the image: `in` is walking down.
                "lines": [{"name": "lane", "a": [0.0, 0.5], "b": [1.0, 0.5]}],
            },
            {
                "id": "cam-lobby",
                "url": f"http://127.0.0.1:{lobby_port}/video.mjpg",
                "floor": 1,
                "zone": "lobby",
                "zones": [
                    {
                        "name": "lobby",
                        # the simulated lobby's waiting area, where people gather
                        "polygon": [[0.55, 0.06], [0.97, 0.06], [0.97, 0.42], [0.55, 0.42]],
                        "crowd_threshold": 15,
                    }
                ],
            },
        ],
    }


def building_config(
    work: Path,
    broker_port: int,
    api_port: int,
    *,
    building: str = BUILDING,
    modbus: dict[str, Any] | None = None,
    cameras: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The simulated building's gateway configuration: the gate and terminal simulators'
    devices on the broker at `broker_port`, rules, the API; meters and cameras if given."""
    gates = [
        {"id": "gate-1-in", "floor": 1, "zone": "entrance", "lane": "1"},
        {"id": "gate-2-in", "floor": 1, "zone": "entrance", "lane": "2"},
        {"id": "gate-1-out", "floor": 1, "zone": "entrance", "lane": "1"},
        {"id": "gate-2-out", "floor": 1, "zone": "entrance", "lane": "2"},
    ]
    return {
        "building": {
            "id": building,
            "name": "演示楼 Demo Hall",
            "timezone": "Asia/Shanghai",
            "floors": FLOORS,
        },
        "privacy": {"card_key": "${CAMPUS_EDGE_CARD_KEY}"},
        "log": {"format": "json", "level": "info"},
        "storage": {"path": str(work / "campus-edge.sqlite")},
        "mqtt": {
            "enabled": True,
            "broker": {
                "host": "127.0.0.1",
                "port": broker_port,
                "client_id": f"campus-edge-{building}",
            },
            "gates": gates,
            "terminals": [{"id": "term-1", "floor": 1}, {"id": "term-2", "floor": 1}],
        },
        "modbus": modbus or {"enabled": False},
        "cameras": cameras or {"enabled": False},
        # The lane camera counts crossings, but its simulated people are not the gate
        # simulator's residents, so it is not paired with a gate (`rules.lanes`): the pair
        # would disagree all day and raise gate.camera_mismatch falsely.
        "rules": {"enabled": True},
        "api": {
            "enabled": True,
            "host": "127.0.0.1",
            "port": api_port,
        },
    }


def _counts(db: Path) -> str:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return "store not ready"
    try:

        def one(sql: str) -> int:
            try:
                return int(con.execute(sql).fetchone()[0])
            except sqlite3.Error:
                return 0

        open_alerts = one("SELECT count(*) FROM alerts WHERE state != 'resolved'")
        return (
            f"events {one('SELECT count(*) FROM events')}, "
            f"readings {one(_READINGS)}, "
            f"alerts {one('SELECT count(*) FROM alerts')} (open {open_alerts}), "
            f"dead letters {one('SELECT count(*) FROM dead_letters')}"
        )
    finally:
        con.close()


_READINGS = (
    "SELECT (SELECT coalesce(sum(n), 0) FROM reading_chunks)"
    " + (SELECT coalesce(sum(n), 0) FROM reading_log)"
)


@contextlib.contextmanager
def _signals_stop() -> Iterator[list[bool]]:
    stop = [False]

    def handler(_sig: int, _frame: object) -> None:
        stop[0] = True

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, old)


def run_demo(*, seed: int, speed: float, workdir: str, duration: float) -> int:
    work = Path(workdir).resolve()
    if work.exists():
        for leftover in ("campus-edge.sqlite", "campus-edge.sqlite-wal", "campus-edge.sqlite-shm"):
            (work / leftover).unlink(missing_ok=True)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CAMPUS_EDGE_CARD_KEY=secrets.token_hex(16))

    broker = Mosquitto(work / "mosquitto")
    procs = Processes(logs)
    print(f"campus-edge demo: building {BUILDING!r}, seed {seed}, speed ×{speed:g}", flush=True)
    try:
        broker.start()
        modbus_base = _free_port_run(FLOORS + 1)
        modbus_yaml = work / "modbus.yaml"
        modbus_yaml.unlink(missing_ok=True)
        procs.start(
            "modbus-sim",
            "simulate",
            "modbus",
            "--floors",
            str(FLOORS),
            "--rooms",
            str(ROOMS),
            "--seed",
            str(seed),
            "--base-port",
            str(modbus_base),
            "--speed",
            str(speed),
            "--config-out",
            str(modbus_yaml),
            env=env,
        )
        lane_port, lobby_port, api_port = free_ports(3)
        w, h = CAMERA_FRAME
        scenes = {
            # a gate lane: people walking in and out across the line
            "camera-lane": (lane_port, seed, ["--density", "12"]),
            # the lobby: fewer passers-by, a group gathering, daylight drifting
            "camera-lobby": (
                lobby_port,
                seed + 1,
                ["--density", "10", "--gather", "16", "--lighting", "drift"],
            ),
        }
        for name, (port, scene_seed, extra) in scenes.items():
            procs.start(
                name,
                "simulate",
                "camera",
                "serve",
                "--port",
                str(port),
                "--seed",
                str(scene_seed),
                "--duration",
                "120",
                "--width",
                str(w),
                "--height",
                str(h),
                *extra,
                env=env,
            )
        _wait_for("the Modbus simulator", modbus_yaml.exists)
        _wait_for("the cameras", lambda: _port_open(lane_port) and _port_open(lobby_port))
        procs.check()
        modbus = yaml.safe_load(modbus_yaml.read_text())["modbus"]

        config_path = work / "building.yaml"
        config = building_config(
            work, broker.port, api_port, modbus=modbus, cameras=_cameras(lane_port, lobby_port)
        )
        config_path.write_text(
            "# Written by `campus-edge demo`; see deploy/examples/building.yaml for a real one.\n"
            + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        )
        print(run_cli("check-config", str(config_path), env=env).strip(), flush=True)

        roster = work / "roster.csv"
        run_cli("simulate", "gates", "--seed", str(seed), "--write-roster", str(roster), env=env)
        run_cli(
            "residents", "import", "--config", str(config_path), "--roster", str(roster), env=env
        )
        password = secrets.token_urlsafe(12)
        run_cli(
            "users",
            "add",
            "--config",
            str(config_path),
            "--name",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
            env=env,
            stdin=password + "\n",
        )

        procs.start("gateway", "run", "--config", str(config_path), env=env)
        gateway_log = logs / "gateway.log"

        def ready() -> bool:
            procs.check()
            return _gateway_ready(gateway_log)

        _wait_for("the gateway to be ready", ready)
        procs.start(
            "gates-sim",
            "simulate",
            "gates",
            "--broker",
            f"127.0.0.1:{broker.port}",
            "--building",
            BUILDING,
            "--seed",
            str(seed),
            "--speed",
            str(speed),
            "--hours",
            "48",
            env=env,
        )

        db = work / "campus-edge.sqlite"
        print(
            "\n".join(
                [
                    "",
                    f"  cockpit      http://127.0.0.1:{api_port}/",
                    f"  login        admin / {password}   (one-time demo password)",
                    f"  API          http://127.0.0.1:{api_port}/api/v1/docs",
                    f"  metrics      http://127.0.0.1:{api_port}/metrics",
                    f"  store        {db}",
                    f"  MQTT broker  127.0.0.1:{broker.port}  "
                    f"(mosquitto_sub -p {broker.port} -t 'campus/{BUILDING}/alert/#' -v)",
                    f"  logs         {logs}/",
                    f"  config       {config_path}",
                    "",
                    "Ctrl-C stops the demo.",
                ]
            ),
            flush=True,
        )
        started = time.monotonic()
        with _signals_stop() as stop:
            while not stop[0] and (duration <= 0 or time.monotonic() - started < duration):
                time.sleep(min(10.0, duration or 10.0))
                procs.check()
                print(f"[{time.strftime('%H:%M:%S')}] {_counts(db)}", flush=True)
        print(json.dumps({"demo": "done", "summary": _counts(db)}), flush=True)
        return 0
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:
        print(f"campus-edge demo: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        broker.stop()
