"""Nothing lost: the gateway is killed with SIGKILL mid-stream ten times while a simulator
publishes QoS 1 events; afterwards every event is stored exactly once."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from collectors.mqtt.transport import MqttTransport
from gateway.config.mqtt import BrokerConfig
from simulators.gates.generator import SimConfig, Simulation
from tests.fixtures.gateway_proc import GatewayFactory
from tests.fixtures.mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[1]
KILLS = 10


def mqtt_overrides(port: int, db: Path, sim: SimConfig) -> dict[str, Any]:
    return {
        "building": {"id": sim.building},
        "storage": {"path": str(db)},
        "mqtt": {
            "enabled": True,
            "broker": {"port": port, "client_id": "gw-kill", "reconnect_min_s": 0.05},
            "gates": [{"id": g.id, "floor": 1} for g in sim.gates],
            "terminals": [{"id": t, "floor": 1} for t in sim.terminals],
        },
    }


def stored_events(db: Path) -> list[str]:
    with sqlite3.connect(db) as con:
        return [r[0] for r in con.execute("SELECT id FROM events")]


def dead_letters(db: Path) -> list[str]:
    with sqlite3.connect(db) as con:
        return [r[0] for r in con.execute("SELECT reason FROM dead_letters LIMIT 5")]


async def test_kill9_ten_times_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, gateway_proc: GatewayFactory
) -> None:
    sim = SimConfig(seed=3, heartbeat_s=60)
    now = time.time_ns() // 1_000_000  # the gateway judges device times by its own clock
    # A day of the building, published at about 200 messages/s while the kills go on.
    start = now - 20 * 3_600_000
    msgs = Simulation(sim, start).generate(now)
    expected = set()
    for m in msgs:
        if m.topic.endswith(("/event", "/txn")):
            device = m.topic.split("/")[3]
            expected.add(f"{device}:{json.loads(m.payload)['serialNo']}")
    db = tmp_path / "store" / "gw.sqlite"
    overrides = mqtt_overrides(mosquitto.port, db, sim)
    env = {"PYTHONPATH": str(ROOT)}

    # The gateway's session and subscription exist before the first publish (as after its
    # first start): what is published before a first subscription is nobody's to queue.
    first = gateway_proc(overrides, env=env)
    first.wait_for(lambda r: "MQTT subscribed" in str(r.get("msg")), 10, "MQTT subscribed")
    first.stop()

    kills_done = asyncio.Event()
    published = 0

    async def publish_all() -> None:
        nonlocal published
        cfg = BrokerConfig(port=mosquitto.port, client_id="sim-kill")
        async with MqttTransport(cfg) as pub:
            for i, m in enumerate(msgs):
                await pub.submit(m.topic, m.payload, 1, m.retain)
                published = i + 1
                if i % 20 == 0 and not kills_done.is_set():
                    await asyncio.sleep(0.1)
            await pub.publish("sim/done", b"")

    publisher = asyncio.create_task(publish_all())
    rng = random.Random(11)
    progress = []
    for _ in range(KILLS):
        gw = await asyncio.to_thread(gateway_proc, overrides, env)
        await asyncio.sleep(rng.uniform(0.2, 1.2))
        await asyncio.to_thread(gw.kill)
        progress.append(len(stored_events(db)))
    assert not publisher.done(), "the stream should outlast the kills"
    # The gateways did store events between kills, while the stream went on.
    assert progress[-1] > progress[0] > 0
    assert progress[-1] < len(expected)
    kills_done.set()
    await asyncio.wait_for(publisher, 60)

    gw = await asyncio.to_thread(gateway_proc, overrides, env)
    deadline = asyncio.get_running_loop().time() + 60
    while len(set(stored_events(db))) < len(expected):
        assert asyncio.get_running_loop().time() < deadline, (
            f"{len(expected - set(stored_events(db)))} events missing; dead letters: "
            f"{dead_letters(db)}; published {published} of {len(msgs)} messages"
        )
        await asyncio.sleep(0.2)
    await asyncio.to_thread(gw.stop)

    ids = stored_events(db)
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert set(ids) == expected
