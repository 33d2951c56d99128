"""Pure parts of the upstream sink: line protocol, backoff, configuration, the backlog alarm."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from gateway.app import assemble_runtime
from gateway.clock import ManualClock
from gateway.config.root import GatewayConfig
from gateway.config.upstream import UpstreamConfig
from gateway.metrics import Metrics
from gateway.model import (
    AlertState,
    Catalog,
    DeviceInfo,
    DeviceKind,
    DeviceStatus,
    Event,
    Quality,
    Reading,
)
from gateway.runtime import ConfigurationError, HealthRegistry, HealthState, Runtime, Stage
from gateway.sinks.component import build_components
from gateway.sinks.influx import Accepted, UpstreamSink
from gateway.sinks.line_protocol import LineError, LineFormatter
from gateway.sinks.upstream_backlog import RULE, BacklogAlarm
from gateway.storage.store import Store


def state(health: HealthRegistry) -> HealthState:
    return health.components["upstream"].state


T = 1_780_000_000_000


def catalog() -> Catalog:
    c = Catalog("b07")
    c.add(DeviceInfo("meter-101", DeviceKind.METER, floor=1, room="101"))
    return c


def test_reading_line_has_sorted_series_tags_and_ms_timestamp() -> None:
    fmt = LineFormatter("b07", catalog())
    line = fmt.format(Reading("meter-101", "power_w", T, 1234.5))
    assert line == (
        f"reading,building=b07,device=meter-101,floor=1,metric=power_w,room=101 value=1234.5 {T}"
    )
    unknown = fmt.format(Reading("meter-x", "power_w", T, 3.0, Quality.BAD))
    assert unknown == f"reading,building=b07,device=meter-x,metric=power_w value=3.0,quality=2i {T}"


def test_tags_are_escaped_and_unrepresentable_input_refused() -> None:
    fmt = LineFormatter("b07")
    line = fmt.format(Reading("a b,c=d", "m", T, 1))
    assert line.startswith(r"reading,building=b07,device=a\ b\,c\=d,metric=m ")
    for bad in (
        Reading("m", "p", T, float("nan")),
        Reading("m", "p", T, float("-inf")),
        Reading("", "p", T, 1.0),
        Reading("m", "a\nb", T, 1.0),
        Reading("m", "trailing\\", T, 1.0),
    ):
        with pytest.raises(LineError):
            fmt.format(bad)
    with pytest.raises(LineError, match="cannot forward"):
        fmt.format(object())


def test_event_fields_skip_personal_and_string_data_unless_asked() -> None:
    data = {"serialNo": 7, "direction": "in", "cardNo": "p-1f2e", "ok": True, "ratio": 0.5}
    event = Event("g1:7", "g1", "gate.pass", T, T + 3, data)
    lean = LineFormatter("b07", event_fields_exclude=frozenset({"cardNo"}))
    assert lean.format(event) == (
        f"event,building=b07,device=g1,kind=gate.pass count=1i,ok=true,ratio=0.5,serialNo=7i {T}"
    )
    rich = LineFormatter(
        "b07", event_string_fields=True, event_fields_exclude=frozenset({"cardNo"})
    )
    line = rich.format(Event("g1:8", "g1", "gate.pass", T, T, {"note": 'say "hi"\\'}))
    fields = 'count=1i,id="g1:8",note="say \\"hi\\"\\\\"'
    assert line == f"event,building=b07,device=g1,kind=gate.pass {fields} {T}"
    status = rich.format(DeviceStatus("g1", T, online=True, mode="free"))
    assert status == f'device_status,building=b07,device=g1 online=true,mode="free" {T}'


def test_overlong_lines_are_refused() -> None:
    fmt = LineFormatter("b07", event_string_fields=True, max_line_bytes=1024)
    with pytest.raises(LineError, match="exceeds"):
        fmt.format(Event("g1:1", "g1", "gate.pass", T, T, {"note": "x" * 2000}))


def test_backoff_is_jittered_capped_and_grows() -> None:
    config = UpstreamConfig(enabled=True, backoff_initial_s=0.5, backoff_max_s=30)
    sink = UpstreamSink(
        config,
        outbox=None,  # type: ignore[arg-type]
        formatter=LineFormatter("b07"),
        writer=None,  # type: ignore[arg-type]
        clock=ManualClock(),
        metrics=Metrics(),
        health=HealthRegistry(ManualClock()),
        rng=random.Random(1),
    )
    first = [sink.backoff(1) for _ in range(200)]
    late = [sink.backoff(20) for _ in range(200)]
    assert all(0.25 <= d <= 0.5 for d in first)
    assert all(0.25 <= d <= 30 for d in late)
    assert max(late) > 20
    assert len(set(late)) > 150  # jittered, not one value


def test_config_rejects_inconsistent_settings() -> None:
    with pytest.raises(ValidationError, match="low_water"):
        UpstreamConfig(high_water=100, low_water=100)
    with pytest.raises(ValidationError, match="backoff_max_s"):
        UpstreamConfig(backoff_initial_s=5, backoff_max_s=1)
    with pytest.raises(ValidationError):
        UpstreamConfig.model_validate({"enabled": True, "urll": "http://x"})
    assert UpstreamConfig(high_water=1000).effective_low_water == 800
    assert isinstance(Accepted(), Accepted)


async def test_backlog_alarm_raises_once_and_resolves_below_low_water(
    store: Store, store_clock: ManualClock
) -> None:
    clock = store_clock
    metrics = Metrics()

    def alarm() -> BacklogAlarm:
        return BacklogAlarm(
            high_water=1000, low_water=800, store=store, clock=clock, metrics=metrics
        )

    async def states() -> list[AlertState]:
        return [a.state for a in await store.alerts(rule=RULE)]

    first = alarm()
    await first.observe(500)
    assert await states() == []
    await first.observe(1001)
    await first.observe(5000)
    assert await states() == [AlertState.OPEN]
    assert first.problem is not None
    assert "above the high-water mark" in first.problem
    assert metrics.value("upstream_backlog_alarm") == 1.0
    await first.observe(900)  # between the marks: still raised, no second alert
    clock.advance(60)
    await first.observe(10)
    assert await states() == [AlertState.RESOLVED]
    assert first.problem is None
    (alert,) = await store.alerts(rule=RULE)
    assert [t.action for t in await store.transitions(alert.id)] == ["open", "resolve"]
    # a restarted gateway takes over the alert still open instead of raising a second one
    clock.advance(60)
    await first.observe(2000)
    restarted = alarm()
    await restarted.observe(3000)
    assert restarted.problem is not None
    assert sorted(await states()) == [AlertState.OPEN, AlertState.RESOLVED]
    await restarted.observe(0)
    assert await states() == [AlertState.RESOLVED, AlertState.RESOLVED]


def runtime_with(store: Store, **sections: object) -> Runtime:
    config = GatewayConfig.model_validate(
        {"building": {"id": "b07"}, "privacy": {"card_key": "k" * 16}, **sections}
    )
    return assemble_runtime(config, store, ManualClock())


async def test_component_is_built_only_when_enabled_and_consistent(store: Store) -> None:
    assert build_components(runtime_with(store)) == []
    with pytest.raises(ConfigurationError, match=r"storage\.outbox"):
        build_components(runtime_with(store, upstream={"enabled": True}))
    with pytest.raises(ConfigurationError, match="high_water"):
        build_components(
            runtime_with(
                store,
                upstream={"enabled": True, "high_water": 6_000_000},
                storage={"outbox": True, "outbox_max_rows": 5_000_000},
            )
        )
    (sink,) = build_components(
        runtime_with(store, upstream={"enabled": True}, storage={"outbox": True})
    )
    assert isinstance(sink, UpstreamSink)
    assert sink.name == "upstream"
    assert sink.stage is Stage.OUTPUT
