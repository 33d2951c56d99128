"""The alert lifecycle on a real store: operator actions, deadlines and escalation,
self-resolve, publication on the bus, and rule state surviving a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.bus import Bus, Stream
from gateway.clock import ManualClock
from gateway.config.rules import LaneConfig, RulesConfig
from gateway.config.storage import StorageConfig
from gateway.metrics import Metrics
from gateway.model import AlertState, Event, Reading, Severity
from gateway.storage.batch import WriteBatch
from gateway.storage.store import Store
from rules.alerts import Change
from rules.engine import Engine
from rules.residents import Roster
from rules.runner import RuleRunner
from rules.service import AlertNotFound, AlertService, InvalidTransition
from simulators.scenarios.building import LANES, TIMEZONE, standard_catalog
from tests.test_rules_engine import local_ms

START = local_ms("2026-11-26 23:20:00")


def _config(**kw: object) -> RulesConfig:
    lanes: list[LaneConfig] = list(LANES)
    off = {"device.offline": {"enabled": False}}
    return RulesConfig.model_validate({"lanes": lanes, "snapshot_s": 3600, "overrides": off, **kw})


class Gateway:
    """The rule engine and its store, restartable on the same database file."""

    def __init__(self, path: Path, clock: ManualClock, config: RulesConfig) -> None:
        self.path = path
        self.clock = clock
        self.config = config
        self.bus = Bus()
        self.store: Store | None = None
        self.runner: RuleRunner | None = None
        self.changes: list[Change] = []

    async def start(self, roster: Roster | None = None) -> RuleRunner:
        cfg = StorageConfig(path=self.path, batch_linger_ms=0)
        self.store = await Store.open(cfg, self.clock, Metrics())
        if roster is not None:
            rows = [(p, r, "", "{}", 0) for p, r in roster.rooms.items()]
            await self.store.commit(
                WriteBatch(
                    sql=[
                        (
                            "INSERT OR REPLACE INTO residents "
                            "(pseudonym, room, name, extra, imported_ms) VALUES (?, ?, ?, ?, ?)",
                            rows,
                        )
                    ]
                )
            )
        engine = Engine(
            self.config, catalog=standard_catalog(), timezone=TIMEZONE, clock=self.clock
        )
        self.runner = RuleRunner(
            engine,
            store=self.store,
            bus=self.bus,
            clock=self.clock,
            config=self.config,
            building="b07",
        )
        self.changes += await self.runner.start()
        return self.runner

    async def stop(self) -> None:
        assert self.runner is not None
        assert self.store is not None
        await self.runner.flush()
        await self.store.close()
        self.runner = None

    async def crash(self) -> None:
        """Gone without flushing its state: only what was committed survives."""
        assert self.store is not None
        await self.store.close()
        self.runner = None

    async def run_to(self, ts_ms: int) -> None:
        assert self.runner is not None
        while self.clock.now_ms() < ts_ms:
            self.clock.set_ms(min(self.clock.now_ms() + 1000, ts_ms))
            self.changes += await self.runner.tick()

    async def reading(self, device: str, metric: str, value: float) -> None:
        assert self.runner is not None
        assert self.store is not None
        r = Reading(device, metric, self.clock.now_ms(), value)
        await self.store.commit(WriteBatch(readings=[r]))
        self.changes += await self.runner.feed([r])

    async def event(self, e: Event) -> None:
        assert self.store is not None
        await self.store.commit(WriteBatch(events=[e]))
        if self.runner is not None:
            self.changes += await self.runner.pull_events()

    def opened(self, rule: str) -> list[Change]:
        return [c for c in self.changes if c.alert.rule == rule and c.transition.action == "open"]


def _pass(n: int, card: str, direction: str, ts: int) -> Event:
    gate = "gate-1" if direction == "in" else "gate-3"
    return Event(f"{gate}:{n}", gate, "gate.pass", ts, ts, {"direction": direction, "card": card})


async def test_restart_mid_door_window_and_before_roll_call_fires_once(tmp_path: Path) -> None:
    clock = ManualClock(START)
    gw = Gateway(tmp_path / "db.sqlite", clock, _config())
    await gw.start(Roster(rooms={"p:alice": "312"}))
    await gw.event(_pass(1, "p:alice", "out", clock.now_ms()))
    await gw.run_to(START + 10_000)
    door_open_at = clock.now_ms()
    await gw.reading("safety-3", "fire_door", 1)
    await gw.run_to(START + 30_000)
    await gw.stop()  # 30 s into the 60 s window; roll call at 23:30 pending

    clock.set_ms(START + 45_000)
    await gw.start()
    for t in range(45, 200, 5):
        await gw.run_to(START + t * 1000)
        await gw.reading("safety-3", "fire_door", 1)
    await gw.stop()

    clock.set_ms(local_ms("2026-11-26 23:31:00"))
    await gw.start()  # stopped again across the roll call
    await gw.run_to(local_ms("2026-11-26 23:32:00"))

    [door] = gw.opened("door.held_open")
    assert door.alert.opened_ms == door_open_at + 60_000
    [absent] = gw.opened("resident.not_returned")
    assert absent.alert.opened_ms == local_ms("2026-11-26 23:30:00")

    assert gw.runner is not None
    store = gw.runner.store
    door_alerts = await store.alerts(rule="door.held_open")
    assert len(door_alerts) == 1
    actions = [t.action for t in await store.transitions(door_alerts[0].id)]
    assert actions.count("open") == 1
    assert len(await store.alerts(rule="resident.not_returned")) == 1
    await gw.stop()


async def test_crash_mid_door_window_resumes_from_periodic_snapshot(tmp_path: Path) -> None:
    clock = ManualClock(START)
    gw = Gateway(tmp_path / "db.sqlite", clock, _config(snapshot_s=2))
    await gw.start()
    await gw.run_to(START + 10_000)
    await gw.reading("safety-3", "fire_door", 1)
    await gw.run_to(START + 30_000)
    await gw.crash()
    clock.set_ms(START + 45_000)
    await gw.start()
    for t in range(45, 120, 5):
        await gw.run_to(START + t * 1000)
        await gw.reading("safety-3", "fire_door", 1)
    [door] = gw.opened("door.held_open")
    assert door.alert.opened_ms == START + 70_000
    await gw.stop()


async def test_crash_before_a_snapshot_replays_the_stored_readings(tmp_path: Path) -> None:
    """The door reading was stored, but the crash came before the rule state holding it was:
    no new reading comes after the restart (the door stays open, nothing changes), and the
    alert still opens when it was due."""
    clock = ManualClock(START)
    gw = Gateway(tmp_path / "db.sqlite", clock, _config(snapshot_s=2))
    await gw.start()
    await gw.run_to(START + 10_000)
    await gw.reading("safety-3", "fire_door", 1)
    await gw.crash()
    clock.set_ms(START + 45_000)
    await gw.start()
    await gw.run_to(START + 120_000)
    [door] = gw.opened("door.held_open")
    assert door.alert.opened_ms == START + 70_000
    await gw.stop()


async def test_operator_lifecycle_is_recorded_and_published(tmp_path: Path) -> None:
    clock = ManualClock(START)
    gw = Gateway(tmp_path / "db.sqlite", clock, _config())
    runner = await gw.start()
    sub = gw.bus.subscribe(Stream.ALERTS, "test")
    await gw.event(Event("gate-1:7", "gate-1", "gate.tailgate", START, START, {"direction": "in"}))
    [opened] = gw.opened("gate.tailgate")
    published = await asyncio.wait_for(sub.get(), 1)
    assert published.alert.id == opened.alert.id
    service = AlertService(runner)

    clock.advance(30)
    acked = await service.acknowledge(opened.alert.id, "desk-wang", "on my way")
    assert acked.state is AlertState.ACKNOWLEDGED
    with pytest.raises(InvalidTransition):
        await service.acknowledge(opened.alert.id, "desk-li")
    assigned = await service.assign(opened.alert.id, "desk-wang", "guard-zhao")
    assert assigned.assignee == "guard-zhao"
    await service.comment(opened.alert.id, "guard-zhao", "two students, one card")
    with pytest.raises(InvalidTransition, match="note"):
        await service.resolve(opened.alert.id, "guard-zhao", " ")
    resolved = await service.resolve(opened.alert.id, "guard-zhao", "second card registered")
    assert resolved.state is AlertState.RESOLVED
    with pytest.raises(InvalidTransition):
        await service.resolve(opened.alert.id, "guard-zhao", "again")
    await service.comment(opened.alert.id, "desk-wang", "follow-up done")
    with pytest.raises(AlertNotFound):
        await service.acknowledge("gate.tailgate:nope", "x")

    stored = await runner.store.alert(opened.alert.id)
    assert stored is not None
    assert stored.state is AlertState.RESOLVED
    trail = await runner.store.transitions(opened.alert.id)
    assert [(t.action, t.actor) for t in trail] == [
        ("open", "system"),
        ("acknowledge", "desk-wang"),
        ("assign", "desk-wang"),
        ("comment", "guard-zhao"),
        ("resolve", "guard-zhao"),
        ("comment", "desk-wang"),
    ]
    assert trail[1].ts_ms == START + 30_000
    await gw.stop()


async def test_deadlines_escalate_one_tier_and_self_resolve(tmp_path: Path) -> None:
    clock = ManualClock(START)
    gw = Gateway(tmp_path / "db.sqlite", clock, _config())
    await gw.start()
    await gw.reading("safety-1", "smoke", 1)  # critical: ack 2 min, resolve 30 min
    [smoke] = gw.opened("safety.smoke")
    assert smoke.alert.ack_deadline_ms == START + 120_000
    assert smoke.alert.resolve_deadline_ms == START + 1_800_000
    assert smoke.alert.receivers == ("desk+security", "duty")
    await gw.run_to(START + 119_000)
    assert not [c for c in gw.changes if c.transition.action == "escalate"]
    await gw.run_to(START + 121_000)
    [esc] = [c for c in gw.changes if c.transition.action == "escalate"]
    assert esc.alert.tier == 1
    assert esc.transition.ts_ms == START + 120_000
    assert "duty" in esc.transition.note
    await gw.run_to(START + 1_801_000)
    escalations = [c for c in gw.changes if c.transition.action == "escalate"]
    assert len(escalations) == 2  # the resolve deadline too, once each
    assert escalations[-1].alert.tier == 1  # no tier beyond the last receiver
    assert gw.runner is not None
    overdue = await gw.runner.store.alerts(overdue_at_ms=clock.now_ms())
    assert [a.id for a in overdue] == [smoke.alert.id]

    # smoke does not resolve itself; an overload does
    await gw.reading("safety-1", "smoke", 0)
    assert gw.changes[-1].transition.action == "update"
    assert gw.changes[-1].alert.state is AlertState.OPEN
    for _ in range(35):
        await gw.reading("meter-312", "power", 1800)
        await gw.run_to(clock.now_ms() + 1000)
    [over] = gw.opened("power.overload")
    assert over.alert.subject == "room:312"
    await gw.reading("meter-312", "power", 100)
    assert gw.changes[-1].transition.action == "resolve"
    assert gw.changes[-1].transition.actor == "system"
    await gw.stop()


async def test_info_alert_has_no_deadline(tmp_path: Path) -> None:
    clock = ManualClock(START)
    gw = Gateway(tmp_path / "db.sqlite", clock, _config())
    await gw.start(Roster(rooms={"p:bob": "313"}))
    await gw.event(_pass(1, "p:bob", "in", clock.now_ms()))
    [late] = gw.opened("resident.late_return")
    assert late.alert.severity is Severity.INFO
    assert late.alert.ack_deadline_ms is None
    assert late.alert.resolve_deadline_ms is None
    await gw.stop()
