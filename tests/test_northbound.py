"""Northbound MQTT against a real Mosquitto: status changes reach the campus broker in order,
through a broker outage and a gateway restart, nothing lost; commands act on alerts."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from collectors.mqtt.transport import Message, MqttTransport
from gateway.app import build_runtime
from gateway.bus import Stream
from gateway.clock import ManualClock
from gateway.config.campus import NorthboundConfig
from gateway.config.mqtt import BrokerConfig
from gateway.config.root import GatewayConfig
from gateway.model import Alert, AlertState, DeviceStatus, Reading, Severity
from gateway.runtime import Runtime
from gateway.sinks.northbound import NorthboundSink, command_topic, parse_command
from gateway.storage.batch import WriteBatch
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.store import make_alert

T0 = 1_780_000_000_000


async def until(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


def _config(tmp: Path) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "building": {"id": "b1"},
            "privacy": {"card_key": "test-card-key-0123456789"},
            "storage": {"path": str(tmp / "store.sqlite"), "batch_linger_ms": 0},
            "rules": {"enabled": False},
        }
    )


def _north(port: int) -> NorthboundConfig:
    broker = BrokerConfig(port=port, client_id="b1-north", reconnect_max_s=0.5)
    return NorthboundConfig(enabled=True, broker=broker, poll_s=0.2, alert_snapshot=False)


@contextlib.asynccontextmanager
async def running(tmp: Path, port: int) -> AsyncIterator[tuple[Runtime, NorthboundSink]]:
    runtime = await build_runtime(_config(tmp), None, ManualClock(T0))
    sink = NorthboundSink(runtime, _north(port))
    task = asyncio.create_task(sink.run())
    try:
        await until(lambda: bool(sink._subs), timeout=5)
        yield runtime, sink
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runtime.store.close()


def _statuses(start: int, n: int) -> list[DeviceStatus]:
    """Four gates, each changing its state every time."""
    return [
        DeviceStatus(f"gate-{i % 4}", T0 + i, online=(i // 4) % 2 == 0) for i in range(start, n)
    ]


async def test_status_survives_broker_outage_and_restart(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    got: list[dict[str, object]] = []

    def on_message(m: Message) -> None:
        if "/north/status/" in m.topic:
            got.append(json.loads(m.payload))

    observer = MqttTransport(
        BrokerConfig(port=broker.port, client_id="observer", reconnect_max_s=0.5),
        subscriptions=["campus/b1/north/#"],
        on_message=on_message,
    )
    try:
        async with observer:
            await observer.wait_connected()
            async with running(tmp_path, broker.port) as (runtime, sink):
                await runtime.bus.publish_many(Stream.STATUS, _statuses(0, 20))
                await until(lambda: len(got) >= 20, timeout=10)
                broker.stop()
                await runtime.bus.publish_many(Stream.STATUS, _statuses(20, 50))
                backlog = 0
                for _ in range(200):
                    backlog = await sink.backlog()
                    if backlog == 30:
                        break
                    await asyncio.sleep(0.02)
                assert backlog == 30
            # the gateway stopped with 30 messages unsent; it starts again, then the broker
            async with running(tmp_path, broker.port) as (runtime, sink):
                broker.start()
                await until(lambda: len({d["ts_ms"] for d in got}) >= 50, timeout=20)
                await until(lambda: sink.sent >= 30, timeout=10)
                assert await sink.backlog() == 0
    finally:
        broker.stop()
    stamps = [int(str(d["ts_ms"])) for d in got]
    assert sorted(set(stamps)) == [T0 + i for i in range(50)]
    first_seen = list(dict.fromkeys(stamps))
    assert first_seen == sorted(first_seen), "delivered out of order"
    assert all(d["building"] == "b1" for d in got)


async def test_unchanged_status_is_not_republished(tmp_path: Path, mosquitto: Mosquitto) -> None:
    async with running(tmp_path, mosquitto.port) as (runtime, sink):
        same = [DeviceStatus("gate-1", T0 + i, online=True, mode="normal") for i in range(5)]
        await runtime.bus.publish_many(Stream.STATUS, same)
        await until(lambda: sink.sent >= 1, timeout=10)
        await asyncio.sleep(0.3)
        assert sink.sent == 1


class _Service:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    async def acknowledge(self, alert_id: str, actor: str, note: str = "") -> Alert:
        self.calls.append(("acknowledge", alert_id, actor, note))
        return Alert(
            alert_id, "gate.forced", "gate-1", Severity.CRITICAL, AlertState.ACKNOWLEDGED, 1, 2, ""
        )

    async def resolve(self, alert_id: str, actor: str, note: str) -> Alert:
        raise ValueError("resolve refused")


async def test_command_calls_alert_service_with_campus_actor(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    assert parse_command("b1", command_topic("b1", "a:1/x", "acknowledge")) == (
        "a:1/x",
        "acknowledge",
    )
    assert parse_command("b1", "campus/b2/cmd/alert/a/acknowledge") is None
    assert parse_command("b1", "campus/b1/cmd/alert/a/delete") is None
    results: list[dict[str, object]] = []
    observer = MqttTransport(
        BrokerConfig(port=mosquitto.port, client_id="obs2"),
        subscriptions=["campus/b1/north/cmd-result"],
        on_message=lambda m: results.append(json.loads(m.payload)),
    )
    async with observer, running(tmp_path, mosquitto.port) as (runtime, _sink):
        service = _Service()
        runtime.alert_service = service  # type: ignore[assignment]
        await observer.wait_connected()
        body = json.dumps({"actor": "alice", "note": "on my way", "request_id": "r1"}).encode()
        await observer.publish(command_topic("b1", "al-1", "acknowledge"), body)
        await observer.publish(command_topic("b1", "al-1", "resolve"), b"{}")
        await observer.publish(command_topic("b1", "al-1", "acknowledge"), b"not json")
        await until(lambda: len(results) >= 3, timeout=10)
    assert service.calls == [("acknowledge", "al-1", "campus:alice", "on my way")]
    assert results[0]["ok"] is True
    assert results[0]["state"] == "acknowledged"
    assert results[0]["request_id"] == "r1"
    assert results[1]["ok"] is False
    assert "resolve refused" in str(results[1]["error"])
    assert results[2]["ok"] is False
    assert "bad payload" in str(results[2]["error"])


async def test_kpis_rate_limited_and_readings_optional(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    got: list[tuple[str, bool, dict[str, object]]] = []
    observer = MqttTransport(
        BrokerConfig(port=mosquitto.port, client_id="obs3"),
        subscriptions=["campus/b1/north/kpi", "campus/b1/north/reading/#"],
        on_message=lambda m: got.append((m.topic, m.retain, json.loads(m.payload))),
    )
    runtime = await build_runtime(_config(tmp_path), None, ManualClock(T0))
    north = _north(mosquitto.port).model_copy(update={"readings": True, "kpi_interval_s": 60})
    sink = NorthboundSink(runtime, north)
    task = asyncio.create_task(sink.run())
    try:
        async with observer:
            await observer.wait_connected()
            await until(lambda: bool(sink._subs))
            await runtime.bus.publish(Stream.KPI, {"open_alerts": 1})
            await runtime.bus.publish(Stream.KPI, {"open_alerts": 2})  # within 60 s: skipped
            await runtime.bus.publish(Stream.READINGS, Reading("meter-101", "power_w", T0, 5.5))
            await until(lambda: len(got) >= 2)
            clock = runtime.clock
            assert isinstance(clock, ManualClock)
            clock.advance(60)
            await runtime.bus.publish(Stream.KPI, {"open_alerts": 3})
            await until(lambda: len(got) >= 3)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runtime.store.close()
    kpis = [d["open_alerts"] for t, _, d in got if t.endswith("/kpi")]
    assert kpis == [1, 3]
    (reading,) = [d for t, _, d in got if t == "campus/b1/north/reading/meter-101"]
    assert reading == {
        "building": "b1",
        "device": "meter-101",
        "metric": "power_w",
        "ts_ms": T0,
        "value": 5.5,
        "quality": 0,
    }


async def test_alert_snapshot_at_start_and_after_changes(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    snaps: list[dict[str, Any]] = []
    observer = MqttTransport(
        BrokerConfig(port=mosquitto.port, client_id="obs4"),
        subscriptions=["campus/b1/north/alerts"],
        on_message=lambda m: snaps.append(json.loads(m.payload)),
    )
    runtime = await build_runtime(_config(tmp_path), None, ManualClock(T0))
    await runtime.store.commit(WriteBatch(alerts=[make_alert("a1"), make_alert("a2")]))
    north = _north(mosquitto.port).model_copy(update={"alert_snapshot": True})
    sink = NorthboundSink(runtime, north)
    task = asyncio.create_task(sink.run())
    try:
        async with observer:
            await observer.wait_connected()
            await until(lambda: len(snaps) >= 1)
            resolved = make_alert("a1", state=AlertState.RESOLVED, updated_ms=T0 + 5)
            await runtime.store.commit(WriteBatch(alerts=[resolved]))
            await runtime.bus.publish(Stream.ALERTS, object())
            await until(lambda: len(snaps) >= 2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runtime.store.close()
    assert sorted(a["id"] for a in snaps[0]["alerts"]) == ["a1", "a2"]
    assert [a["id"] for a in snaps[1]["alerts"]] == ["a2"]
    assert snaps[1]["building"] == "b1"
