"""MQTT ingest: gate events broker -> committed store at QoS 1, acknowledged after commit.

Events carry the cards of a population of 2,000 residents (as a building would). Both MQTT
versions the adapter speaks are measured, alternating run by run (5 is the default). Each run
has topics of its own, so the broker queues a backlog only for that run's sessions. Prints
one JSON object:

- `sustained_events_per_s`: a backlog of N gate events queued by Mosquitto for the gateway's
  persistent session, drained by the MQTT collector into the store (decode, validate,
  pseudonymize, commit, then acknowledge); median of the runs.
- `ingest_cpu_us_per_event_by_thread`: CPU µs per event of the event loop (adapter, decoding,
  collector) and of the store's writer thread, while draining.
- `bare_subscriber_msgs_per_s`: the same backlog drained by a subscriber of the same adapter
  (`collectors/mqtt/transport.py`) that does nothing but acknowledge, in the same run;
  `ratio` = ingest / bare.
- `latency_ms`: medians over the runs of p50/p99 from publish (another process, wall clock)
  to the event being committed (the collector publishes it on the bus right after the commit),
  at 1,000 events/s.

Run: `.venv/bin/python bench/mqtt_ingest.py [--quick]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collectors.mqtt.collector import MqttCollector  # noqa: E402
from collectors.mqtt.transport import Message, MqttTransport  # noqa: E402
from gateway.app import build_runtime, freeze_startup_heap  # noqa: E402
from gateway.bus import Stream  # noqa: E402
from gateway.clock import SystemClock  # noqa: E402
from gateway.config.mqtt import BrokerConfig  # noqa: E402
from gateway.config.root import GatewayConfig  # noqa: E402
from tests.fixtures.mosquitto import Mosquitto  # noqa: E402

GATES = ("gate-1-in", "gate-2-in", "gate-1-out", "gate-2-out")
LIBRARY = (
    "paho-mqtt 2.2 for the connection, session and control packets; inbound PUBLISH and "
    "PUBACK framed by collectors/mqtt/transport.py; all on the asyncio loop"
)

PUBLISHER = r"""
import asyncio, json, sys, time
from datetime import datetime, timezone, timedelta
from collectors.mqtt.transport import MqttTransport
from gateway.config.mqtt import BrokerConfig
port, n, rate, start = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
out, building = sys.argv[5], sys.argv[6]
gates = ("gate-1-in", "gate-2-in", "gate-1-out", "gate-2-out")
tz = timezone(timedelta(hours=8))
async def main():
    sent = {}
    cfg = BrokerConfig(port=port, client_id=f"bench-pub-{start}", publish_window=5000)
    async with MqttTransport(cfg) as t:
        await t.wait_connected()
        t0 = time.monotonic()
        futs = []
        for i in range(n):
            if rate > 0:
                due = t0 + i / rate
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            now = time.time()
            serial = start + i
            body = {
                "serialNo": serial,
                "time": datetime.fromtimestamp(now, tz).isoformat(timespec="milliseconds"),
                "event": "pass",
                "direction": "in" if i % 2 == 0 else "out",
                "cardNo": f"30{(serial * 7919) % 2000:08d}",
                "personType": "student",
                "verifyMode": "face",
            }
            if rate > 0:
                sent[serial] = now
            topic = f"campus/{building}/gate/{gates[i % 4]}/event"
            futs.append(await t.submit(topic, json.dumps(body).encode()))
            if len(futs) >= 10000:
                await asyncio.gather(*futs); futs.clear()
        await asyncio.gather(*futs)
    with open(out, "w") as fh:
        json.dump(sent, fh)
asyncio.run(main())
"""


def building(run: int) -> str:
    """Each run has a building (topics) of its own: the broker queues a backlog only for
    that run's sessions, not for every persistent session of the runs before."""
    return f"b{run}"


def publish(
    port: int, n: int, rate: float, start: int, workdir: Path, run: int
) -> dict[int, float]:
    out = workdir / f"pub-{start}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [str(port), str(n), str(rate), str(start), str(out), building(run)]
    subprocess.run([sys.executable, "-c", PUBLISHER, *args], check=True, env=env)
    return {int(k): v for k, v in json.loads(out.read_text()).items()}


def config(workdir: Path, port: int, run: int, protocol: str = "5") -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "building": {"id": building(run)},
            "privacy": {"card_key": "bench-key-0123456789"},
            "storage": {"path": str(workdir / f"bench-{run}.sqlite")},
            "rules": {"enabled": False},
            "mqtt": {
                "enabled": True,
                "broker": {"port": port, "client_id": f"bench-gw-{run}", "protocol": protocol},
                "gates": [{"id": g, "floor": 1} for g in GATES],
            },
        }
    )


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's threads, by role (Linux `/proc`; empty elsewhere)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    main = threading.main_thread().native_id
    with contextlib.suppress(OSError):
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
                name = names.get(int(tid), "")
                role = (
                    "event_loop"
                    if int(tid) == main
                    else "store_writer"
                    if name.startswith("store-writer")
                    else "other"
                )
                out[role] = out.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_per_event(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    return {k: round((v - before.get(k, 0.0)) / n * 1e6, 1) for k, v in sorted(after.items())}


async def collector_session(
    cfg: GatewayConfig, until: int | None
) -> tuple[float, dict[str, float]]:
    """Run the collector until `until` messages are committed (None: just subscribe).
    Returns the time it took and the CPU µs per message of each thread role."""
    rt = await build_runtime(cfg, None, SystemClock())
    col = MqttCollector(rt)
    freeze_startup_heap()  # as run_gateway does once its components started
    cpu0 = thread_cpu()
    t0 = time.perf_counter()
    task = asyncio.create_task(col.run())
    try:
        while col.transport is None:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        await col.transport.wait_subscribed()
        if until is not None:
            deadline = time.monotonic() + 120
            while col.committed < until:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {col.committed} of {until} committed")
                await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - t0
        cpu = cpu_per_event(cpu0, thread_cpu(), until or 1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await rt.store.close()
    return elapsed, cpu


async def bare_session(
    port: int, client_id: str, run: int, until: int | None, protocol: str = "5"
) -> float:
    """A bare subscriber of the same adapter: acknowledges what each read brought at once."""
    got = 0
    done = asyncio.Event()
    transport: MqttTransport | None = None

    def on_messages(batch: list[Message]) -> None:
        nonlocal got
        got += len(batch)
        assert transport is not None
        transport.ack(batch)
        if until is not None and got >= until:
            done.set()

    t = transport = MqttTransport(
        BrokerConfig(port=port, client_id=client_id, protocol=protocol),
        subscriptions=[f"campus/{building(run)}/gate/+/event"],
        on_messages=on_messages,
    )
    t0 = time.perf_counter()
    async with t:
        await t.wait_connected()
        if until is None:
            await t.wait_subscribed()
            return 0.0
        await asyncio.wait_for(done.wait(), 120)
        return time.perf_counter() - t0


async def latency(port: int, workdir: Path, n: int, run: int) -> dict[str, float]:
    cfg = config(workdir, port, run)
    rt = await build_runtime(cfg, None, SystemClock())
    col = MqttCollector(rt)
    sub = rt.bus.subscribe(Stream.EVENTS, "bench", maxsize=n + 10)
    committed: dict[int, float] = {}

    async def drain() -> None:
        while True:
            ev = await sub.get()
            committed[int(ev.data["serialNo"])] = time.time()

    task = asyncio.create_task(col.run())
    drainer = asyncio.create_task(drain())
    try:
        while col.transport is None:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        await col.transport.wait_subscribed()
        sent = await asyncio.to_thread(publish, port, n, 1000.0, 5_000_000, workdir, run)
        deadline = time.monotonic() + 60
        while len(committed) < n and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    finally:
        for t in (task, drainer):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await rt.store.close()
    lat = sorted((committed[s] - sent[s]) * 1000 for s in sent if s in committed)
    if len(lat) < n:
        raise RuntimeError(f"only {len(lat)} of {n} events committed")
    return {
        "events": n,
        "rate_per_s": 1000,
        "p50": round(lat[len(lat) // 2], 2),
        "p99": round(lat[int(len(lat) * 0.99)], 2),
        "max": round(lat[-1], 2),
    }


async def drain_rates(
    broker: Mosquitto, workdir: Path, n: int, run: int, protocol: str
) -> dict[str, Any]:
    """Ingest events/s and bare msgs/s for one backlog of n, with their CPU µs per message."""
    cfg = config(workdir, broker.port, run, protocol)
    bare_id = f"bench-bare-{run}"
    # Sessions first, so the broker queues the backlog for both.
    await collector_session(cfg, None)
    await bare_session(broker.port, bare_id, run, None, protocol)
    publish(broker.port, n, 0, run * 1_000_000, workdir, run)
    elapsed, cpu = await collector_session(cfg, n)
    cpu0 = time.process_time()
    bare = n / await bare_session(broker.port, bare_id, run, n, protocol)
    bare_cpu_us = (time.process_time() - cpu0) / n * 1e6
    return {
        "ingest": n / elapsed,
        "bare": bare,
        "cpu": cpu,
        "bare_cpu": bare_cpu_us,
        "load": round(os.getloadavg()[0], 2),
    }


async def main(quick: bool) -> dict[str, Any]:
    n = 20_000 if quick else 30_000
    runs = 3 if quick else 5
    lat_n = 3_000 if quick else 5_000
    out: dict[str, Any] = {"bench": "mqtt_ingest", "library": LIBRARY}
    with tempfile.TemporaryDirectory(prefix="mqtt-bench-") as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir / "broker")
        broker.start()
        try:
            results: dict[str, list[dict[str, Any]]] = {"5": [], "3.1.1": []}
            for run in range(runs):  # the versions alternate, so load changes hit both
                for i, protocol in enumerate(results):
                    results[protocol].append(
                        await drain_rates(broker, workdir, n, run * 10 + i, protocol)
                    )
            lats = []
            for run in range(runs):
                (workdir / f"lat{run}").mkdir()
                lats.append(await latency(broker.port, workdir / f"lat{run}", lat_n, 900 + run))
        finally:
            broker.stop()
    for protocol, rs in results.items():
        ingest = statistics.median(r["ingest"] for r in rs)
        bare = statistics.median(r["bare"] for r in rs)
        roles = sorted({k for r in rs for k in r["cpu"]})
        by_thread = {k: statistics.median(r["cpu"].get(k, 0.0) for r in rs) for k in roles}
        out[f"mqtt_{protocol}"] = {
            "sustained_events_per_s": round(ingest),
            "bare_subscriber_msgs_per_s": round(bare),
            "ratio_ingest_to_bare": round(ingest / bare, 3),
            "ingest_cpu_us_per_event": round(sum(by_thread.values()), 1),
            "ingest_cpu_us_per_event_by_thread": by_thread,
            "bare_cpu_us_per_msg": round(statistics.median(r["bare_cpu"] for r in rs), 1),
            "runs": [
                {
                    "events_per_s": round(r["ingest"]),
                    "bare_msgs_per_s": round(r["bare"]),
                    "load_1m": r["load"],
                }
                for r in rs
            ],
        }
    out.update(
        {
            "default_protocol": BrokerConfig().protocol,
            "backlog_events": n,
            "runs": runs,
            "latency_ms": {
                "events_per_run": lat_n,
                "rate_per_s": 1000,
                "p50": statistics.median(x["p50"] for x in lats),
                "p99": statistics.median(x["p99"] for x in lats),
                "runs": [[x["p50"], x["p99"], x["max"]] for x in lats],
            },
            "targets": {"events_per_s": 20_000, "p99_ms": 50},
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    )
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smaller run")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(main(args.quick))))
