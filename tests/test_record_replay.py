"""Record a simulated building's traffic, replay it into another gateway: same stored events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collectors.mqtt.collector import MqttCollector
from gateway.app import build_runtime
from gateway.clock import SystemClock
from gateway.config.mqtt import BrokerConfig
from gateway.config.root import GatewayConfig
from gateway.runtime import Runtime
from simulators.gates.cli import simulate
from simulators.gates.generator import SimConfig
from simulators.recording.cli import record, replay
from simulators.recording.jsonl import decode, encode, read
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.net import await_until


def test_jsonl_round_trip_binary_and_text(tmp_path: Path) -> None:
    line = encode(5, "a/b", 1, True, b"\xff\x00x")
    assert json.loads(line)["b64"] is True
    assert decode(line).payload == b"\xff\x00x"
    text = decode(encode(6, "a/c", 0, False, "中文".encode()))
    assert (text.at_ms, text.topic, text.qos, text.retain, text.payload) == (
        6,
        "a/c",
        0,
        False,
        "中文".encode(),
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text(line + "\n{nope\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        list(read(bad))


def config(tmp_path: Path, port: int, name: str) -> GatewayConfig:
    sim = SimConfig()
    return GatewayConfig.model_validate(
        {
            "building": {"id": sim.building},
            "privacy": {"card_key": "replay-test-key-0123"},
            "storage": {"path": str(tmp_path / f"{name}.sqlite"), "batch_linger_ms": 0},
            "rules": {"enabled": False},
            "mqtt": {
                "enabled": True,
                "broker": {"port": port, "client_id": f"gw-{name}", "reconnect_min_s": 0.05},
                "gates": [{"id": g.id} for g in sim.gates],
                "terminals": [{"id": t} for t in sim.terminals],
            },
        }
    )


@contextlib.asynccontextmanager
async def gateway(cfg: GatewayConfig) -> AsyncIterator[tuple[Runtime, MqttCollector]]:
    rt = await build_runtime(cfg, None, SystemClock())
    col = MqttCollector(rt)
    task = asyncio.create_task(col.run())
    try:

        async def up() -> bool:
            return col.transport is not None

        await await_until(up, 10, "collector started")
        assert col.transport is not None
        await asyncio.wait_for(col.transport.wait_subscribed(), 10)
        yield rt, col
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await rt.store.close()


async def stored(rt: Runtime) -> list[tuple[str, str, int, str]]:
    return [
        (e.event.id, e.event.kind, e.event.ts_ms, json.dumps(dict(e.event.data), sort_keys=True))
        for e in await rt.store.events(limit=100_000)
    ]


async def test_replayed_recording_stores_the_same_events(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    recording = tmp_path / "b07.jsonl"
    start = time.time_ns() // 1_000_000 - 3 * 3_600_000
    async with gateway(config(tmp_path, mosquitto.port, "original")) as (rt, col):
        stop, ready = asyncio.Event(), asyncio.Event()
        recorder = asyncio.create_task(
            record(
                BrokerConfig(port=mosquitto.port, client_id="rec", session_expiry_s=0),
                ["campus/#"],
                recording,
                stop=stop,
                ready=ready,
            )
        )
        await asyncio.wait_for(ready.wait(), 10)
        sent = await simulate(
            BrokerConfig(port=mosquitto.port, client_id="sim"),
            seed=11,
            building="b07",
            speed=None,
            hours=3,
            start_ms=start,
            incidents=True,
        )

        async def all_committed() -> bool:
            return col.committed >= sent

        await await_until(all_committed, 30, "the simulated traffic committed")

        async def all_recorded() -> bool:
            return recording.exists() and len(recording.read_bytes().splitlines()) >= sent

        await await_until(all_recorded, 10, "the traffic recorded")
        stop.set()
        assert await recorder == sent
        original = await stored(rt)
    assert len(original) > 50
    lines = list(read(recording))
    assert len(lines) == sent
    assert all(m.qos == 1 for m in lines)
    assert {m.retain for m in lines} == {True, False}  # retain flags as published

    other = Mosquitto(tmp_path / "second-broker")
    other.start()
    try:
        async with gateway(config(tmp_path, other.port, "replayed")) as (rt2, col2):
            n = await replay(
                BrokerConfig(port=other.port, client_id="replay"), recording, speed=None
            )
            assert n == sent

            async def replayed() -> bool:
                return col2.committed >= n

            await await_until(replayed, 30, "the replay committed")
            assert await stored(rt2) == original
    finally:
        other.stop()
