"""The supervisor: restart with backoff on an injected clock, parking, staged shutdown."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from gateway.clock import ManualClock
from gateway.metrics import Metrics
from gateway.runtime import ConfigurationError, HealthRegistry, HealthState, Stage
from gateway.supervisor import Backoff, ShutdownPolicy, Supervisor
from tests.fixtures.net import await_until


async def settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


@dataclass
class Flaky:
    """Fails at once on each run; from run `healthy_from` on, first runs `healthy_s` seconds."""

    clock: ManualClock
    name: str = "flaky"
    stage: Stage = Stage.INGEST
    runs: int = 0
    healthy_from: int = 10**9
    healthy_s: float = 0.0

    async def run(self) -> None:
        self.runs += 1
        if self.runs >= self.healthy_from:
            await self.clock.sleep(self.healthy_s)
        raise ConnectionError(f"broker gone (run {self.runs})")


@dataclass
class Recorder:
    """Runs until cancelled; its cancellation path takes `stop_s` and records what it did."""

    name: str
    stage: Stage
    log: list[str]
    stop_s: float = 0.0

    async def run(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.log.append(f"cancelled {self.name}")
            await asyncio.sleep(self.stop_s)  # e.g. commit what was received
            self.log.append(f"stopped {self.name}")
            raise


@dataclass
class Stubborn:
    """Ignores cancellation until released: only the stage timeout gets past it."""

    name: str
    stage: Stage
    log: list[str]
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.log.append(f"ignored cancel {self.name}")


def supervisor(components: list, clock: ManualClock, **kw: object) -> Supervisor:  # type: ignore[type-arg]
    return Supervisor(components, HealthRegistry(clock), clock, **kw)  # type: ignore[arg-type]


BACKOFF = Backoff(initial_s=1.0, factor=2.0, cap_s=8.0, jitter=0.2, healthy_after_s=30.0)


def test_backoff_grows_caps_and_jitters_within_bounds() -> None:
    rng = random.Random(1)
    delays = [BACKOFF.delay(a, rng) for a in range(8)]
    bases = [1, 2, 4, 8, 8, 8, 8, 8]
    for d, base in zip(delays, bases, strict=True):
        assert base * 0.8 <= d <= base
    assert len(set(delays)) == len(delays), "jitter spreads restarts"
    rng1, rng2 = random.Random(5), random.Random(5)
    assert [BACKOFF.delay(a, rng1) for a in range(5)] == [BACKOFF.delay(a, rng2) for a in range(5)]
    assert Backoff().delay(10_000, random.Random(0)) <= Backoff().cap_s


async def test_failing_component_is_restarted_with_backoff_on_the_clock() -> None:
    clock = ManualClock()
    comp = Flaky(clock)
    metrics = Metrics()
    sup = supervisor([comp], clock, rng=random.Random(42), backoff=BACKOFF, metrics=metrics)
    expected_rng = random.Random(42)
    sup.start()
    health = sup.health.components["flaky"]
    for attempt in range(6):
        await await_until(_is(lambda n=attempt + 1: comp.runs == n), what=f"run {attempt + 1}")
        assert health.state is HealthState.RESTARTING
        assert health.restarts == attempt + 1
        assert metrics.value("component_restarts_total", component="flaky") == attempt + 1
        assert 'campus_edge_component_up{component="flaky"} 0' in metrics.render()
        assert f"broker gone (run {attempt + 1})" in health.detail
        delay = BACKOFF.delay(attempt, expected_rng)
        assert f"restart in {delay:.1f} s" in health.detail
        clock.advance(delay - 0.002)
        await settle()
        assert comp.runs == attempt + 1, "restarted before its backoff ran out"
        clock.advance(0.003)  # the manual clock moves in whole milliseconds
    await await_until(_is(lambda: comp.runs == 7))
    await sup.shutdown()
    assert health.state is HealthState.STOPPED


async def test_backoff_starts_over_after_a_healthy_run() -> None:
    clock = ManualClock()
    comp = Flaky(clock, healthy_from=4, healthy_s=31.0)
    rng = random.Random(3)
    expected_rng = random.Random(3)
    sup = supervisor([comp], clock, rng=rng, backoff=BACKOFF)
    sup.start()
    for attempt in range(3):  # three quick failures: 1, 2, 4 s
        await await_until(_is(lambda n=attempt + 1: comp.runs == n))
        await settle()
        clock.advance(BACKOFF.delay(attempt, expected_rng) + 0.001)
    await await_until(_is(lambda: comp.runs == 4))
    await settle()
    assert sup.health.components["flaky"].state is HealthState.RUNNING
    clock.advance(31.0)  # ran healthily for longer than healthy_after_s, then failed
    await await_until(_is(lambda: sup.health.components["flaky"].restarts == 4))
    first = BACKOFF.delay(0, expected_rng)
    assert first <= BACKOFF.initial_s
    assert f"restart in {first:.1f} s" in sup.health.components["flaky"].detail
    clock.advance(first + 0.001)
    await await_until(_is(lambda: comp.runs == 5))
    await sup.shutdown()


async def test_configuration_error_parks_the_component_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    runs = 0

    @dataclass
    class Misconfigured:
        name: str = "modbus"
        stage: Stage = Stage.INGEST

        async def run(self) -> None:
            nonlocal runs
            runs += 1
            raise ConfigurationError("modbus.meters[3].unit_id: 300 is out of range (1-247)")

    caplog.set_level(logging.INFO, logger="gateway.supervisor")
    sup = supervisor([Misconfigured()], clock, backoff=BACKOFF)
    sup.start()
    health = sup.health.components["modbus"]
    await await_until(_is(lambda: health.state is HealthState.PARKED))
    clock.advance(3600)
    await settle()
    assert runs == 1
    assert health.detail == "modbus.meters[3].unit_id: 300 is out of range (1-247)"
    assert not sup.health.ready()
    parked = [r for r in caplog.records if "parked" in r.getMessage()]
    assert len(parked) == 1
    assert getattr(parked[0], "component", None) == "modbus"
    await sup.shutdown()
    assert health.state is HealthState.PARKED


async def test_component_that_finishes_is_not_restarted() -> None:
    clock = ManualClock()

    @dataclass
    class OneShot:
        name: str = "migrate"
        stage: Stage = Stage.OUTPUT

        async def run(self) -> None:
            return None

    sup = supervisor([OneShot()], clock)
    sup.start()
    await await_until(_is(lambda: sup.health.components["migrate"].state is HealthState.STOPPED))
    assert sup.health.components["migrate"].restarts == 0
    await sup.shutdown()


async def test_health_is_ready_when_everything_runs() -> None:
    clock = ManualClock()
    log: list[str] = []
    sup = supervisor([Recorder("a", Stage.INGEST, log), Recorder("b", Stage.OUTPUT, log)], clock)
    sup.start()
    await await_until(_is(sup.health.ready), what="ready")
    assert {t.get_name() for t in asyncio.all_tasks()} >= {"a", "b"}
    assert sup.metrics is None
    await sup.shutdown()
    assert not sup.health.ready()


def test_component_names_must_be_unique() -> None:
    clock = ManualClock()
    log: list[str] = []
    sup = supervisor([Recorder("x", Stage.INGEST, log), Recorder("x", Stage.RULES, log)], clock)
    with pytest.raises(ValueError, match="unique"):
        sup.start()


async def test_staged_shutdown_order_timeouts_and_store_close() -> None:
    clock = ManualClock()
    log: list[str] = []
    stubborn = Stubborn("api", Stage.OUTPUT, log)
    components = [
        stubborn,
        Recorder("rules", Stage.RULES, log, stop_s=0.05),
        Recorder("mqtt", Stage.INGEST, log, stop_s=0.2),
        Recorder("modbus", Stage.INGEST, log, stop_s=0.0),
    ]

    async def close_store() -> None:
        log.append("store closed")

    policy = ShutdownPolicy(stage_timeout_s=0.5, total_s=3.0, hooks_reserve_s=0.5)
    sup = supervisor(components, clock, shutdown_policy=policy, on_stopped=[close_store])
    sup.start()
    await await_until(_is(sup.health.ready))
    began = time.monotonic()
    await sup.shutdown()
    elapsed = time.monotonic() - began
    ingest = {"cancelled mqtt", "cancelled modbus", "stopped mqtt", "stopped modbus"}
    assert set(log[:4]) == ingest, log
    assert log[4:] == [
        "cancelled rules",
        "stopped rules",
        "ignored cancel api",
        "store closed",
    ]
    assert sup.stragglers == ["api"]
    assert "did not stop within 0.5 s" in sup.health.components["api"].detail
    assert sup.health.components["mqtt"].state is HealthState.STOPPED
    assert 0.2 + 0.05 + 0.5 <= elapsed < 2.0
    stubborn.release.set()
    await settle()


async def test_whole_shutdown_stays_within_its_budget() -> None:
    clock = ManualClock()
    log: list[str] = []
    stubborn = [Stubborn(f"s{stage.name}", stage, log) for stage in Stage]
    closed: list[float] = []

    async def close_store() -> None:
        closed.append(time.monotonic())

    policy = ShutdownPolicy(stage_timeout_s=0.6, total_s=1.0, hooks_reserve_s=0.2)
    sup = supervisor(stubborn, clock, shutdown_policy=policy, on_stopped=[close_store])
    sup.start()
    await await_until(_is(sup.health.ready))
    began = time.monotonic()
    await sup.shutdown()
    elapsed = time.monotonic() - began
    assert sorted(sup.stragglers) == ["sINGEST", "sOUTPUT", "sRULES"]
    assert closed, "the store is closed even when components are stuck"
    assert closed[0] - began <= policy.total_s - policy.hooks_reserve_s + 0.1
    assert elapsed < policy.total_s
    for s in stubborn:
        s.release.set()
    await settle()
    default = ShutdownPolicy()
    assert default.total_s + 0.5 <= 10.0  # run_blocking grants stragglers 0.5 s more
    assert len(Stage) * default.stage_timeout_s <= default.total_s - default.hooks_reserve_s


async def test_failure_while_stopping_is_not_restarted() -> None:
    clock = ManualClock()
    runs = 0

    @dataclass
    class FailsOnCancel:
        name: str = "cam"
        stage: Stage = Stage.INGEST

        async def run(self) -> None:
            nonlocal runs
            runs += 1
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                raise RuntimeError("flush failed") from None

    sup = supervisor([FailsOnCancel()], clock)
    sup.start()
    await await_until(_is(sup.health.ready))
    await sup.shutdown()
    await settle()
    assert runs == 1
    assert sup.health.components["cam"].state is HealthState.STOPPED
    assert "flush failed" in sup.health.components["cam"].detail


async def test_run_until_stop_event() -> None:
    clock = ManualClock()
    log: list[str] = []
    sup = supervisor([Recorder("a", Stage.INGEST, log)], clock)
    stop = asyncio.Event()
    task = asyncio.create_task(sup.run(stop))
    await await_until(_is(lambda: "a" in sup.health.components and sup.health.ready()))
    stop.set()
    await asyncio.wait_for(task, 2.0)
    assert log == ["cancelled a", "stopped a"]


def _is(cond: Callable[[], object]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(cond())

    return check
