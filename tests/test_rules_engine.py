"""The pure rule engine: each rule kind of the catalogue, on a manual clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.clock import ManualClock
from gateway.config.rules import RulesConfig
from gateway.model import AlertState, DeviceStatus, Event, Reading, Severity
from rules.alerts import Change
from rules.engine import Engine
from rules.residents import Roster
from rules.spec import RuleError, build_specs
from simulators.scenarios.building import LANES, TIMEZONE, standard_catalog

TZ = ZoneInfo(TIMEZONE)


def local_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp() * 1000)


class Harness:
    def __init__(self, config: RulesConfig | None = None, roster: Roster | None = None) -> None:
        cfg = config or RulesConfig(lanes=list(LANES))
        self.clock = ManualClock(local_ms("2026-11-26 20:00:00"))
        self.engine = Engine(
            cfg, catalog=standard_catalog(), timezone=TIMEZONE, clock=self.clock, roster=roster
        )
        self.engine.start()
        self.changes: list[Change] = []
        self.serial = 0

    def at(self, seconds: float, step: int = 1) -> int:
        """Run the clock to `seconds` after 20:00, ticking every `step` seconds."""
        target = local_ms("2026-11-26 20:00:00") + int(seconds * 1000)
        while self.clock.now_ms() + step * 1000 <= target:
            self.clock.advance(step)
            self.changes += self.engine.tick()
        self.clock.set_ms(target)
        self.changes += self.engine.tick()
        return target

    def feed(self, item: Any) -> None:
        self.changes += self.engine.feed(item)

    def reading(self, device: str, metric: str, value: float) -> None:
        self.feed(Reading(device, metric, self.clock.now_ms(), value))

    def gate(self, device: str, event: str, **data: Any) -> None:
        self.serial += 1
        now = self.clock.now_ms()
        self.feed(Event(f"{device}:{self.serial}", device, f"gate.{event}", now, now, data))

    def opened(self, rule: str) -> list[Change]:
        return [c for c in self.changes if c.alert.rule == rule and c.transition.action == "open"]


def test_catalogue_loads_and_overrides_apply() -> None:
    specs = {s.id: s for s in build_specs(RulesConfig())}
    assert len(specs) == 20
    cfg = RulesConfig.model_validate(
        {"overrides": {"power.overload": {"params": {"above": 2000}, "enabled": False}}}
    )
    over = {s.id: s for s in build_specs(cfg)}["power.overload"]
    assert over.params["above"] == 2000
    assert over.params["for_s"] == 30
    assert not over.enabled
    with pytest.raises(RuleError, match="no such catalogue rule"):
        build_specs(RulesConfig.model_validate({"overrides": {"nope": {}}}))


def test_door_held_open_is_one_episode_warning_then_critical() -> None:
    h = Harness()
    h.at(10)
    h.reading("safety-3", "fire_door", 1)
    h.at(69)
    assert not h.opened("door.held_open")
    h.at(70)
    [opened] = h.opened("door.held_open")
    assert opened.alert.severity is Severity.WARNING
    assert opened.alert.opened_ms == h.at(70)
    h.at(309)
    h.at(310)
    ups = [c for c in h.changes if c.alert.rule == "door.held_open"]
    assert [c.transition.action for c in ups] == ["open", "update"]
    assert ups[-1].alert.severity is Severity.CRITICAL
    assert ups[-1].alert.id == opened.alert.id
    h.reading("safety-3", "fire_door", 0)
    assert h.changes[-1].transition.action == "resolve"
    assert h.changes[-1].alert.state is AlertState.RESOLVED


def test_door_closed_before_60_s_raises_nothing() -> None:
    h = Harness()
    h.reading("safety-2", "fire_door", 1)
    h.at(59)
    h.reading("safety-2", "fire_door", 0)
    h.at(400)
    assert not h.opened("door.held_open")


def test_gate_events_one_alert_per_event() -> None:
    h = Harness()
    h.gate("gate-1", "tailgate", direction="in")
    h.gate("gate-1", "tailgate", direction="in")
    h.gate("gate-2", "climb", direction="in")
    h.gate("gate-2", "denied_blacklist", direction="in", card="p:x")
    assert len(h.opened("gate.tailgate")) == 2
    assert len(h.opened("gate.forced")) == 1
    assert h.opened("gate.forced")[0].alert.severity is Severity.CRITICAL
    assert len(h.opened("gate.blacklist")) == 1


def test_outsider_night_window_includes_start_excludes_end() -> None:
    h = Harness()
    h.at(3 * 3600 - 1, step=60)  # 22:59:59
    h.gate("gate-1", "denied_no_permission", direction="in", card="p:a")
    assert not h.opened("gate.outsider_night")
    h.at(3 * 3600)  # 23:00:00
    h.gate("gate-1", "denied_no_permission", direction="in", card="p:b")
    assert len(h.opened("gate.outsider_night")) == 1
    h.at(10 * 3600, step=60)  # 06:00 next day
    h.gate("gate-1", "denied_no_permission", direction="in", card="p:c")
    assert len(h.opened("gate.outsider_night")) == 1


def test_denied_burst_per_card_and_per_gate() -> None:
    h = Harness()
    for i in range(3):
        h.at(i * 50)
        h.gate("gate-1", "denied_unknown_card", direction="in", card="p:z")
    [alert] = h.opened("gate.denied_burst")
    assert alert.alert.subject == "card:p:z"
    h2 = Harness()
    for i in range(10):
        h2.at(i * 5)
        h2.gate("gate-2", "denied_time_window", direction="in", card=f"p:{i}")
    assert [c.alert.subject for c in h2.opened("gate.denied_burst")] == ["gate-2"]


def test_denied_burst_spread_out_is_quiet() -> None:
    h = Harness()
    for i in range(4):
        h.at(i * 70)
        h.gate("gate-1", "denied_unknown_card", direction="in", card="p:z")
    assert not h.opened("gate.denied_burst")


def test_illegal_appliance_step_with_power_factor() -> None:
    h = Harness()
    for t in range(40):
        h.at(t)
        kettle = t >= 10
        h.reading("meter-312", "power", 1900 if kettle else 60)
        h.reading("meter-312", "power_factor", 0.99 if kettle else 0.6)
    [alert] = h.opened("power.illegal_appliance")
    assert alert.alert.subject == "room:312"
    assert alert.alert.opened_ms == local_ms("2026-11-26 20:00:20")


def test_laptop_and_charger_raise_no_appliance_alert() -> None:
    h = Harness()
    for t in range(120):
        h.at(t)
        h.reading("meter-101", "power", 65 + (10 if t > 30 else 0))
        h.reading("meter-101", "power_factor", 0.55)
    assert not h.opened("power.illegal_appliance")


def test_temperature_absolute_and_rise() -> None:
    h = Harness()
    h.reading("safety-1", "temperature", 24)
    h.at(30)
    h.reading("safety-1", "temperature", 33)  # +9 within 60 s
    assert len(h.opened("safety.temperature")) == 1
    h.reading("safety-4", "temperature", 51)
    assert len(h.opened("safety.temperature")) == 2


def test_offline_after_two_intervals_and_late_heartbeat_within_grace() -> None:
    h = Harness(RulesConfig(lanes=list(LANES), heartbeat_s={"gate": 30.0}))

    def status(dev: str) -> None:
        h.feed(DeviceStatus(dev, h.clock.now_ms(), True, "normal"))

    for t in (0, 30, 75, 105):  # 45 s gap: late but within 2 intervals
        h.at(t)
        status("gate-1")
        status("gate-2")
    h.at(130)
    status("gate-1")
    h.at(170)
    offline = {c.alert.subject for c in h.opened("device.offline")}
    assert "gate-1" not in offline
    assert "gate-2" in offline
    h.feed(DeviceStatus("gate-2", h.clock.now_ms(), True, "normal"))
    assert h.changes[-1].transition.action == "resolve"


def test_polled_devices_go_offline_by_their_collector_not_by_silence() -> None:
    h = Harness()  # default heartbeats: none for meters (report-on-change keeps them quiet)
    h.reading("meter-101", "power", 40.0)
    h.at(3600)
    silent = {c.alert.subject for c in h.opened("device.offline")}
    assert "gate-1" in silent  # heartbeat devices do go offline by silence
    assert not {d for d in silent if d.startswith(("meter-", "safety-"))}
    h.feed(DeviceStatus("meter-101", h.clock.now_ms(), False))
    assert h.changes[-1].alert.subject == "meter-101"
    assert h.changes[-1].transition.action == "open"
    h.feed(DeviceStatus("meter-101", h.clock.now_ms(), True))
    assert h.changes[-1].transition.action == "resolve"


def test_offline_at_once_on_last_will() -> None:
    h = Harness()
    h.feed(DeviceStatus("term-1", h.clock.now_ms(), False))
    assert [c.alert.subject for c in h.opened("device.offline")] == ["term-1"]


def test_terminal_fault_and_failure_rate() -> None:
    h = Harness()
    h.feed(DeviceStatus("term-1", h.clock.now_ms(), True, "ok", {"paper": "out"}))
    assert len(h.opened("terminal.fault")) == 1
    h.feed(DeviceStatus("term-1", h.clock.now_ms(), True, "ok", {"paper": "ok"}))
    assert h.changes[-1].transition.action == "resolve"
    for i, result in enumerate(["ok", "failed", "ok", "failed", "ok"]):
        h.at(i * 60)
        now = h.clock.now_ms()
        h.feed(Event(f"term-2:{i}", "term-2", "terminal.txn", now, now, {"result": result}))
    assert len(h.opened("terminal.failure_rate")) == 1


def test_camera_tamper_needs_ten_seconds() -> None:
    h = Harness()

    def tamper(state: str) -> None:
        now = h.clock.now_ms()
        h.feed(
            Event(
                f"t{now}", "cam-3", "camera.tamper", now, now, {"type": "covered", "state": state}
            )
        )

    tamper("on")
    h.at(5)
    tamper("off")  # lighting change
    h.at(30)
    assert not h.opened("camera.tamper")
    tamper("on")
    h.at(41)
    assert [c.alert.subject for c in h.opened("camera.tamper")] == ["cam-3/covered"]


def test_crowd_density_by_zone() -> None:
    h = Harness()
    for t in range(0, 70, 5):
        h.at(t)
        h.reading("cam-3", "occupancy.lobby", 18)
    [alert] = h.opened("crowd.density")
    assert alert.alert.subject == "zone:lobby"
    assert alert.alert.opened_ms == local_ms("2026-11-26 20:01:00")


def test_camera_mismatch_counts_against_gate_passes() -> None:
    h = Harness()

    def crossing(cam: str, count: int) -> None:
        now = h.clock.now_ms()
        h.feed(
            Event(
                f"{cam}:{now}",
                cam,
                "camera.line_crossing",
                now,
                now,
                {"line": "lane", "direction": "in", "count": count},
            )
        )

    h.at(10)
    crossing("cam-1", 1)
    h.at(11)
    h.gate("gate-1", "pass", direction="in", card="p:1")
    h.at(20)
    assert not h.opened("gate.camera_mismatch")
    crossing("cam-1", 2)
    h.at(21)
    h.gate("gate-1", "pass", direction="in", card="p:2")
    h.at(30)
    [alert] = h.opened("gate.camera_mismatch")
    assert alert.alert.subject == "gate-1"


def _roster() -> Roster:
    return Roster(
        rooms={"p:alice": "312", "p:bob": "313", "p:carol": "314"},
        leave={"p:carol": [(local_ms("2026-11-26 08:00:00"), local_ms("2026-11-28 08:00:00"))]},
    )


def test_roll_call_not_returned_respects_leave_and_clears_on_return() -> None:
    h = Harness(roster=_roster())
    h.at(60)
    h.gate("gate-3", "pass", direction="out", card="p:alice")
    h.gate("gate-3", "pass", direction="out", card="p:carol")
    h.gate("gate-1", "pass", direction="in", card="p:bob")
    h.at(3.5 * 3600, step=10)  # 23:30
    opened = h.opened("resident.not_returned")
    assert [c.alert.subject for c in opened] == ["resident:p:alice"]
    assert opened[0].alert.opened_ms == local_ms("2026-11-26 23:30:00")
    h.at(3.6 * 3600, step=10)
    h.gate("gate-1", "pass", direction="in", card="p:alice")
    assert h.changes[-1].transition.action == "resolve"


def test_free_gate_makes_presence_unknown() -> None:
    h = Harness(roster=_roster())
    h.at(60)
    h.gate("gate-3", "pass", direction="out", card="p:alice")
    h.at(120)
    h.feed(DeviceStatus("gate-1", h.clock.now_ms(), True, "free"))
    h.at(600)
    h.feed(DeviceStatus("gate-1", h.clock.now_ms(), True, "normal"))
    h.at(3.5 * 3600, step=10)
    assert not h.opened("resident.not_returned")


def test_late_return_only_for_residents_in_window() -> None:
    h = Harness(roster=_roster())
    h.at(3 * 3600 + 60, step=10)
    h.gate("gate-1", "pass", direction="in", card="p:alice")
    h.gate("gate-1", "pass", direction="in", card="p:visitor")
    h.gate("gate-3", "pass", direction="out", card="p:bob")
    opened = h.opened("resident.late_return")
    assert [c.alert.subject for c in opened] == ["resident:p:alice"]
    assert opened[0].alert.severity is Severity.INFO


def test_no_exit_after_48_hours() -> None:
    h = Harness(roster=Roster(rooms={"p:dan": "215"}))
    h.gate("gate-1", "pass", direction="in", card="p:dan")
    h.at(47 * 3600, step=60)
    assert not h.opened("resident.no_exit")
    h.at(48 * 3600 + 60, step=60)
    [alert] = h.opened("resident.no_exit")
    assert alert.alert.opened_ms == local_ms("2026-11-28 20:00:00")


def test_disabled_rule_raises_nothing() -> None:
    cfg = RulesConfig.model_validate({"overrides": {"gate.tailgate": {"enabled": False}}})
    h = Harness(cfg)
    h.gate("gate-1", "tailgate", direction="in")
    assert not h.changes
