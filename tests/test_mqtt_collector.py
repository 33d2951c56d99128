"""The MQTT collector end to end: real Mosquitto, real store, every payload kind of the spec."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from collectors.mqtt.collector import MqttCollector
from collectors.mqtt.transport import MqttTransport
from gateway.app import build_runtime
from gateway.bus import Stream
from gateway.clock import ManualClock
from gateway.config.mqtt import BrokerConfig
from gateway.config.root import GatewayConfig
from gateway.runtime import Runtime
from simulators.gates.generator import local_iso
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.net import await_until

NOW = 1_780_000_000_000
CARD = "3071234567"
KEY = "test-key-0123456789abcdef"


def gateway_config(tmp_path: Path, port: int, **mqtt: Any) -> GatewayConfig:
    section: dict[str, Any] = {
        "enabled": True,
        "broker": {"port": port, "client_id": "gw-test", "reconnect_min_s": 0.05},
        "gates": [{"id": "gate-1", "floor": 1}, {"id": "gate-2", "floor": 1}],
        "terminals": [{"id": "term-1", "floor": 1}],
    }
    section.update(mqtt)
    return GatewayConfig.model_validate(
        {
            "building": {"id": "b07"},
            "privacy": {"card_key": KEY},
            "storage": {"path": str(tmp_path / "gw.sqlite"), "batch_linger_ms": 0},
            "mqtt": section,
            "rules": {"enabled": False},
        }
    )


@contextlib.asynccontextmanager
async def running_collector(
    tmp_path: Path, broker: Mosquitto, **mqtt: Any
) -> AsyncIterator[tuple[Runtime, MqttCollector]]:
    rt = await build_runtime(gateway_config(tmp_path, broker.port, **mqtt), None, ManualClock(NOW))
    collector = MqttCollector(rt)
    task = asyncio.create_task(collector.run())
    try:

        async def up() -> bool:
            return collector.transport is not None

        await await_until(up, 10, "collector started")
        assert collector.transport is not None
        await asyncio.wait_for(collector.transport.wait_subscribed(), 10)
        yield rt, collector
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await rt.store.close()


@contextlib.asynccontextmanager
async def publisher(broker: Mosquitto) -> AsyncIterator[MqttTransport]:
    async with MqttTransport(BrokerConfig(port=broker.port, client_id="pub-test")) as t:
        await asyncio.wait_for(t.wait_connected(), 10)
        yield t


def iso(ms: int) -> str:
    return local_iso(ms, ZoneInfo("Asia/Shanghai"))


def body(**kw: Any) -> bytes:
    return json.dumps(kw).encode()


def db_files(directory: Path) -> list[bytes]:
    return [f.read_bytes() for f in directory.glob("gw.sqlite*")]


async def until_committed(collector: MqttCollector, n: int) -> None:
    async def done() -> bool:
        return collector.committed >= n

    await await_until(done, 10, f"{n} messages committed")


async def test_every_payload_kind_is_stored(tmp_path: Path, mosquitto: Mosquitto) -> None:
    async with running_collector(tmp_path, mosquitto) as (rt, col), publisher(mosquitto) as pub:
        events_sub = rt.bus.subscribe(Stream.EVENTS, "test")
        status_sub = rt.bus.subscribe(Stream.STATUS, "test")
        t = NOW - 5000
        await pub.publish(
            "campus/b07/gate/gate-1/event",
            body(
                serialNo=41,
                time=iso(t),
                event="pass",
                direction="in",
                cardNo=CARD,
                personType="student",
                verifyMode="face",
            ),
        )
        await pub.publish(
            "campus/b07/gate/gate-2/event",
            body(serialNo=7, time=iso(t + 1), event="tailgate", direction="out"),
        )
        await pub.publish(
            "campus/b07/gate/gate-1/status",
            body(online=True, mode="free", time=iso(t + 2)),
            retain=True,
        )
        await pub.publish(
            "campus/b07/terminal/term-1/txn",
            body(
                serialNo=881,
                time=iso(t + 3),
                service="card_topup",
                result="ok",
                durationMs=4200,
                cardNo=CARD,
            ),
        )
        await pub.publish(
            "campus/b07/terminal/term-1/status",
            body(online=True, state="degraded", paper="low", faults=["printer_jam"], time=iso(t)),
            retain=True,
        )
        # A last will fixed at connection time, 20 h ago: stamped with its arrival.
        will_time = iso(NOW - 20 * 3_600_000)
        await pub.publish("campus/b07/gate/gate-2/status", body(online=False, time=will_time))
        await until_committed(col, 6)

        stored = {e.event.id: e.event for e in await rt.store.events()}
        assert set(stored) == {"gate-1:41", "gate-2:7", "term-1:881"}
        e = stored["gate-1:41"]
        assert (e.device, e.kind, e.ts_ms, e.received_ms) == ("gate-1", "gate.pass", t, NOW)
        assert dict(e.data) == {
            "direction": "in",
            "serialNo": 41,
            "card": rt.pseudonymizer.card(CARD),
            "personType": "student",
            "verifyMode": "face",
        }
        assert stored["gate-2:7"].kind == "gate.tailgate"
        assert "card" not in stored["gate-2:7"].data
        txn = stored["term-1:881"]
        assert txn.kind == "terminal.txn"
        assert dict(txn.data) == {
            "service": "card_topup",
            "result": "ok",
            "serialNo": 881,
            "durationMs": 4200,
            "card": rt.pseudonymizer.card(CARD),
        }
        latest = await rt.store.latest_statuses()
        g1, g2 = latest["gate-1"], latest["gate-2"]
        assert (g1.online, g1.mode, g1.ts_ms) == (True, "free", t + 2)
        assert (g2.online, g2.ts_ms) == (False, NOW)
        term = latest["term-1"]
        assert (term.online, term.mode) == (True, "degraded")
        assert dict(term.detail) == {"paper": "low", "faults": ["printer_jam"]}
        # After commit, new items are on the bus for the rule engine.
        assert len(events_sub.get_nowait_many(10)) == 3
        assert len(status_sub.get_nowait_many(10)) == 3

    # The raw card number never reaches the database files.
    assert not any(CARD.encode() in data for data in db_files(tmp_path))


BAD = [
    ("not_json", b"{not json", "not JSON"),
    ("not_object", b"[1, 2]", "not a JSON object"),
    ("missing", body(time=iso(NOW), event="pass", direction="in"), "missing field 'serialNo'"),
    (
        "wrong_type",
        body(serialNo="12", time=iso(NOW), event="pass", direction="in"),
        "serialNo: expected an integer",
    ),
    (
        "unknown_enum",
        body(serialNo=1, time=iso(NOW), event="teleport", direction="in"),
        "event: unknown value 'teleport'",
    ),
    (
        "bad_card",
        body(serialNo=1, time=iso(NOW), event="pass", direction="in", cardNo="12ab"),
        "cardNo: expected 6–20 digits",
    ),
    (
        "absurd_time",
        body(serialNo=1, time=iso(NOW + 30 * 3_600_000), event="pass", direction="in"),
        "+30.0 h off the gateway clock",
    ),
    (
        "bad_time",
        body(serialNo=1, time="yesterday", event="pass", direction="in"),
        "time: not a valid time",
    ),
    ("too_large", b'{"x": "' + b"a" * 70_000 + b'"}', "exceeds 65536"),
]


async def test_bad_payloads_are_dead_lettered(tmp_path: Path, mosquitto: Mosquitto) -> None:
    async with running_collector(tmp_path, mosquitto) as (rt, col), publisher(mosquitto) as pub:
        for _, payload, _ in BAD:
            await pub.publish("campus/b07/gate/gate-1/event", payload)
        await pub.publish("campus/b07/gate/gate-9/event", body(serialNo=1))
        await pub.publish("campus/b07/terminal/gate-1/txn", body(serialNo=1))
        # The collector keeps going: a good event after the bad ones is stored.
        good = body(serialNo=5, time=iso(NOW), event="pass", direction="in")
        await pub.publish("campus/b07/gate/gate-1/event", good)
        await until_committed(col, len(BAD) + 3)

        stored = sorted(await rt.store.dead_letters(limit=100), key=lambda d: d.id)
        letters = [d.letter for d in stored]
        reasons = [dl.reason for dl in letters]
        assert len(letters) == len(BAD) + 2
        for (name, _, expected), reason in zip(BAD, reasons[: len(BAD)], strict=True):
            assert expected in reason, (name, reason)
        assert "unknown device 'gate-9'" in reasons[len(BAD)]
        assert "is a gate, not a terminal" in reasons[len(BAD) + 1]
        assert all(dl.topic.startswith("campus/b07/") and dl.source == "mqtt" for dl in letters)
        assert len(letters[-1].payload) <= 65536
        assert [e.event.id for e in await rt.store.events()] == ["gate-1:5"]
        counts = await rt.store.dead_letter_counts()
        assert counts["gate-1"] == len(BAD) + 1
        assert rt.metrics.value("mqtt_dead_letters_total", device="gate-1", reason="not_json") == 2
        assert rt.metrics.value("mqtt_dead_letters_total", device="", reason="unknown_device") == 1


async def test_duplicates_are_stored_once(tmp_path: Path, mosquitto: Mosquitto) -> None:
    async with running_collector(tmp_path, mosquitto) as (rt, col), publisher(mosquitto) as pub:
        sub = rt.bus.subscribe(Stream.EVENTS, "test")
        ev = body(serialNo=9, time=iso(NOW), event="pass", direction="in", cardNo=CARD)
        for _ in range(3):
            await pub.publish("campus/b07/gate/gate-1/event", ev)
        await until_committed(col, 3)
        assert [e.event.id for e in await rt.store.events()] == ["gate-1:9"]
        assert len(sub.get_nowait_many(10)) == 1  # only new events reach the rules


async def test_broker_restarted_mid_stream(tmp_path: Path, mosquitto: Mosquitto) -> None:
    total = 3000
    async with running_collector(tmp_path, mosquitto) as (rt, col), publisher(mosquitto) as pub:

        async def produce() -> None:
            futs = []
            for i in range(total):
                ev = body(serialNo=i, time=iso(NOW), event="pass", direction="in")
                futs.append(await pub.submit("campus/b07/gate/gate-1/event", ev))
                if i % 100 == 0:
                    await asyncio.sleep(0.005)
            await asyncio.gather(*futs)

        producer = asyncio.create_task(produce())

        async def midway() -> bool:
            return col.committed > total // 4

        await await_until(midway, 20, "a quarter committed")
        await asyncio.to_thread(mosquitto.restart)
        await asyncio.wait_for(producer, 30)

        async def all_there() -> bool:
            return len(await rt.store.events(limit=total + 10)) == total

        await await_until(all_there, 20, "every event stored")
        ids = sorted(int(e.event.id.split(":")[1]) for e in await rt.store.events(limit=total))
        assert ids == list(range(total))


@pytest.mark.parametrize("retained", [True, False])
async def test_status_time_of_live_status(
    tmp_path: Path, mosquitto: Mosquitto, retained: bool
) -> None:
    async with running_collector(tmp_path, mosquitto) as (rt, col), publisher(mosquitto) as pub:
        await pub.publish(
            "campus/b07/gate/gate-1/status",
            body(online=True, mode="locked", time=iso(NOW - 1000)),
            retain=retained,
        )
        await until_committed(col, 1)
        history = await rt.store.status_history("gate-1")
        assert [(s.online, s.mode, s.ts_ms) for s in history] == [(True, "locked", NOW - 1000)]
