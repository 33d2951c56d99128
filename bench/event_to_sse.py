"""End-to-end alert latency of the cockpit (issue 7): a `forced` gate event published on MQTT
until its `gate.forced` alert arrives on the SSE stream, through the real processes: Mosquitto,
the gateway (`python -m gateway.cli run`: MQTT collector, store, rule engine, API) and an SSE
client. Target: p99 under 200 ms.

Events are sent one at a time (each waits for its alert): phase `idle` with nothing else going
on, phase `loaded` while a second publisher sends `pass` events at ~1,000/s. Latency is
publish start (perf_counter) to the arrival of the alert's SSE frame. Prints one JSON object.
Percentiles are nearest-rank upper (with n ≤ 100, p99 is the maximum).
Run: .venv/bin/python bench/event_to_sse.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collectors.mqtt.transport import MqttTransport  # noqa: E402
from gateway.config.mqtt import BrokerConfig  # noqa: E402
from simulators.broker import Mosquitto, free_port  # noqa: E402
from simulators.demo import building_config, run_cli  # noqa: E402

BUILDING = "bench"
TARGET_MS = 200.0
RULE = "gate.forced"
FORCED_GATE = "gate-1-in"
LOAD_GATE = "gate-2-in"
CAMPUS_TZ = timezone(timedelta(hours=8))
ALERT_TIMEOUT_S = 10.0


def pct(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"n": 0}
    s = sorted(ms)

    def at(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))], 1)

    return {
        "n": len(s),
        "p50_ms": round(statistics.median(s), 1),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": round(s[-1], 1),
    }


def gate_event(serial: int, event: str, card: str | None = None) -> bytes:
    body: dict[str, Any] = {
        "serialNo": serial,
        "time": datetime.now(CAMPUS_TZ).isoformat(timespec="milliseconds"),
        "event": event,
        "direction": "in",
    }
    if card is not None:
        body["cardNo"] = card
    return json.dumps(body).encode()


def wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> float:
    t0 = time.monotonic()
    while True:
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    if json.loads(line).get("msg") == "gateway ready":
                        return time.monotonic() - t0
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"gateway not ready after {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def sse_reader(
    base: str,
    token: str,
    q: queue.Queue[tuple[float, dict[str, Any]]],
    connected: threading.Event,
    stop: threading.Event,
) -> None:
    """Puts (arrival perf_counter, alert) for every opened `gate.forced` alert."""
    auth = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(10.0, read=None)
    with (
        httpx.Client(base_url=base, headers=auth, timeout=timeout) as c,
        c.stream("GET", "/api/v1/stream") as r,
    ):
        r.raise_for_status()
        connected.set()
        for line in r.iter_lines():
            if stop.is_set():
                return
            if line.startswith("data: ") and RULE in line:
                arrived = time.perf_counter()
                data = json.loads(line[6:])
                if data.get("rule") == RULE and data.get("state") == "open":
                    q.put((arrived, data))


def load_publisher(
    broker_port: int, rate: float, base_serial: int, stop: threading.Event, out: dict[str, Any]
) -> None:
    """`pass` events at `rate`/s on another gate, from its own connection and event loop."""

    async def run() -> None:
        cfg = BrokerConfig(
            host="127.0.0.1", port=broker_port, client_id=f"bench-load-{base_serial}"
        )
        topic = f"campus/{BUILDING}/gate/{LOAD_GATE}/event"
        sent = failed = 0
        futs: list[asyncio.Future[None]] = []
        async with MqttTransport(cfg) as t:
            await asyncio.wait_for(t.wait_connected(), 10)
            out["ready"].set()
            t0 = time.perf_counter()
            while not stop.is_set():
                due = int((time.perf_counter() - t0) * rate)
                while sent < due:
                    card = f"2023{sent % 5000:08d}"
                    futs.append(await t.submit(topic, gate_event(base_serial + sent, "pass", card)))
                    sent += 1
                await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - t0
            done, pending = await asyncio.wait(futs, timeout=10) if futs else (set(), set())
            failed = sum(1 for f in done if f.exception() is not None) + len(pending)
        out.update(sent=sent, failed=failed, rate_per_s=round(sent / elapsed, 1))

    try:
        asyncio.run(run())
    except Exception as exc:  # reported in the JSON, not lost in a thread
        out["error"] = repr(exc)
        out["ready"].set()


async def measure(
    t: MqttTransport,
    q: queue.Queue[tuple[float, dict[str, Any]]],
    n: int,
    base_serial: int,
    stray: list[str],
) -> tuple[list[float], int]:
    topic = f"campus/{BUILDING}/gate/{FORCED_GATE}/event"
    times: list[float] = []
    lost = 0
    for i in range(n):
        while not q.empty():  # a late alert of an earlier event must not count for this one
            stray.append(str(q.get_nowait()[1].get("id")))
        payload = gate_event(base_serial + i, "forced")
        t0 = time.perf_counter()
        await t.publish(topic, payload, qos=1)
        try:
            arrived, alert = await asyncio.to_thread(q.get, True, ALERT_TIMEOUT_S)
        except queue.Empty:
            lost += 1
            continue
        if alert.get("subject") != FORCED_GATE:
            stray.append(str(alert.get("id")))
        times.append((arrived - t0) * 1000)
        await asyncio.sleep(0.02)
    return times, lost


async def phases(
    broker_port: int,
    q: queue.Queue[tuple[float, dict[str, Any]]],
    n_idle: int,
    n_loaded: int,
    load_stop: threading.Event,
) -> dict[str, Any]:
    run_base = time.time_ns() // 1_000_000 % 1_000_000_000 * 1000
    stray: list[str] = []
    cfg = BrokerConfig(host="127.0.0.1", port=broker_port, client_id=f"bench-forced-{run_base}")
    result: dict[str, Any] = {}
    lost = 0
    async with MqttTransport(cfg) as t:
        await asyncio.wait_for(t.wait_connected(), 10)
        # One unmeasured event: the first alert pays for lazy start-up on every hop.
        await measure(t, q, 1, run_base, stray)
        idle, lost = await measure(t, q, n_idle, run_base + 1, stray)
        result["idle"] = {**pct(idle), "lost": lost}
        p99s = [pct(idle).get("p99_ms", float("inf"))]
        if n_loaded:
            load_out: dict[str, Any] = {"ready": threading.Event()}
            loader = threading.Thread(
                target=load_publisher,
                args=(broker_port, 1000.0, run_base, load_stop, load_out),
                daemon=True,
            )
            loader.start()
            await asyncio.to_thread(load_out["ready"].wait, 15)
            await asyncio.sleep(1.0)  # let the background load reach its steady state
            loaded, loaded_lost = await measure(t, q, n_loaded, run_base + 1 + n_idle, stray)
            load_stop.set()
            await asyncio.to_thread(loader.join, 30)
            load_out.pop("ready")
            result["loaded"] = {
                **pct(loaded),
                "lost": loaded_lost,
                "background": {"event": "pass", "target_per_s": 1000, **load_out},
            }
            lost += loaded_lost
            p99s.append(pct(loaded).get("p99_ms", float("inf")))
    result["stray_alerts"] = len(stray)
    result["target"] = f"p99 < {TARGET_MS:g} ms"
    result["met"] = lost == 0 and all(p < TARGET_MS for p in p99s)
    return result


def bench(work: Path, quick: bool, skip_load: bool) -> dict[str, Any]:
    n_idle = 30 if quick else 100
    n_loaded = 0 if skip_load else (20 if quick else 50)
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    gw: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    load_stop = threading.Event()
    try:
        api_port = free_port()
        conf = work / "gateway.yaml"
        conf.write_text(
            yaml.safe_dump(
                building_config(work, broker.port, api_port, building=BUILDING), allow_unicode=True
            )
        )
        env = dict(os.environ, CAMPUS_EDGE_CARD_KEY=secrets.token_hex(16))
        add = ["tokens", "add", "--config", str(conf), "--label", "bench", "--role", "admin"]
        token = run_cli(*add, env=env).strip().splitlines()[-1]

        log = work / "gateway.log"
        with log.open("wb") as out:
            gw = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", "--config", str(conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )
        startup_s = wait_ready(gw, log)

        q: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        connected = threading.Event()
        base = f"http://127.0.0.1:{api_port}"
        reader = threading.Thread(
            target=sse_reader, args=(base, token, q, connected, stop), daemon=True
        )
        reader.start()
        if not connected.wait(15):
            raise RuntimeError("the SSE stream did not open")
        measured = asyncio.run(phases(broker.port, q, n_idle, n_loaded, load_stop))
        return {
            "bench": "event_to_sse",
            "includes": "MQTT publish (QoS 1) → Mosquitto → gateway collector + store commit"
            " + rule engine + API hub → SSE client (separate processes, loopback)",
            "quick": quick,
            "gateway_startup_s": round(startup_s, 1),
            **measured,
        }
    finally:
        stop.set()
        load_stop.set()
        if gw is not None and gw.poll() is None:
            gw.send_signal(signal.SIGTERM)
            try:
                gw.wait(20)
            except subprocess.TimeoutExpired:
                gw.kill()
                gw.wait()
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="30 idle + 20 loaded events")
    ap.add_argument("--no-load", action="store_true", help="skip the phase under background load")
    ap.add_argument("--keep", action="store_true", help="keep the working directory (logs)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-event-sse-"))
    try:
        result = bench(work, args.quick, args.no_load)
        if args.keep:
            result["workdir"] = str(work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
