"""Rule kinds over absence and schedules: device heartbeat, roll call, and dwell time."""

from __future__ import annotations

from typing import Any

from gateway.model import DeviceStatus, Event
from rules.kinds.base import Context, Rule
from rules.localtime import DailySchedule
from rules.residents import IN
from rules.spec import RuleSpec, Scope

DEFAULT_HEARTBEAT_S = 30.0


class Absence(Rule):
    """A device is offline after `intervals` heartbeat intervals without any sign of life
    (a status, reading or event), or at once when it reports `online: false`; one alert per
    device, cleared when it is back."""

    wants_status = True
    wants_seen = True
    ticks = True

    def __init__(self, spec: RuleSpec, scope: Scope, ctx: Context) -> None:
        super().__init__(spec, scope, ctx)
        self.intervals = float(spec.param("intervals", 2))
        self.seen: dict[str, int] = {}
        self.limit: dict[str, int | None] = {}
        self.offline: set[str] = set()
        self.next_check = 0

    def _limit(self, device: str) -> int | None:
        """Milliseconds of silence after which the device is offline; None: no timer."""
        if device not in self.limit:
            info = self.ctx.catalog.get(device)
            kind = str(info.kind) if info is not None else ""
            every = self.ctx.heartbeat_s.get(kind, DEFAULT_HEARTBEAT_S)
            self.limit[device] = None if every is None else int(every * self.intervals * 1000)
        return self.limit[device]

    def start(self, now_ms: int, restored: bool) -> None:
        # A restart is not the devices' fault: everyone gets a fresh allowance from now.
        for device in self.ctx.catalog.devices:
            if self.scope.admits(device):
                self.seen[device] = max(self.seen.get(device, now_ms), now_ms)
        if restored:
            for device in self.seen:
                self.seen[device] = max(self.seen[device], now_ms)

    def on_seen(self, device: str, now_ms: int) -> None:
        self.seen[device] = now_ms
        if device in self.offline:
            self.offline.discard(device)
            self.emit(device, False, now_ms)

    def on_status(self, s: DeviceStatus, now_ms: int) -> None:
        if not self.scope.admits(s.device):
            return
        if s.online:
            self.on_seen(s.device, now_ms)
            return
        self.seen[s.device] = now_ms
        if s.device not in self.offline:
            self.offline.add(s.device)
            self.emit(s.device, True, now_ms, self._vars(s.device, now_ms))

    def _vars(self, device: str, last: int) -> dict[str, Any]:
        vars_ = self.ctx.where(device)
        vars_["last_local"] = self.ctx.local.text(last)
        return vars_

    def tick(self, now_ms: int) -> None:
        if now_ms < self.next_check:
            return
        self.next_check = now_ms + 1000
        limits, offline = self.limit, self.offline
        for device, last in self.seen.items():
            limit = limits[device] if device in limits else self._limit(device)
            if limit is not None and now_ms - last > limit and device not in offline:
                offline.add(device)
                self.emit(device, True, last + limit, self._vars(device, last))

    def snapshot(self) -> Any:
        return {"seen": self.seen, "offline": sorted(self.offline)}

    def restore(self, state: Any) -> None:
        self.seen = {d: int(t) for d, t in state.get("seen", {}).items()}
        self.offline = set(state.get("offline", []))


class _ResidentRule(Rule):
    """Shared by resident rules: alerts per resident that clear at their next passage."""

    event_kinds = ("gate.pass",)

    def __init__(self, spec: RuleSpec, scope: Scope, ctx: Context) -> None:
        super().__init__(spec, scope, ctx)
        self.active: set[str] = set()

    def on_event(self, e: Event, now_ms: int) -> None:
        card = e.data.get("card")
        if card in self.active and self._clears(str(e.data.get("direction"))):
            self.active.discard(str(card))
            self.emit(f"resident:{card}", False, e.ts_ms)

    def _clears(self, direction: str) -> bool:
        return True

    def _raise(self, pseudonym: str, ts_ms: int, last_ms: int) -> None:
        self.active.add(pseudonym)
        vars_: dict[str, Any] = {
            "room": self.ctx.roster.room(pseudonym) or "?",
            "last_local": self.ctx.local.text(last_ms),
            "resident": pseudonym,
        }
        self.emit(f"resident:{pseudonym}", True, ts_ms, vars_)


class RollCall(_ResidentRule):
    """At a scheduled local time, every resident whose last recorded passage is `out` and
    whose approved leave does not cover that time; cleared when they pass in."""

    ticks = True

    def __init__(self, spec: RuleSpec, scope: Scope, ctx: Context) -> None:
        super().__init__(spec, scope, ctx)
        self.schedule = DailySchedule.parse(
            str(spec.need("at")), spec.param("days"), list(ctx.holidays)
        )
        self.next_due: int | None = None

    def _clears(self, direction: str) -> bool:
        return direction == IN

    def start(self, now_ms: int, restored: bool) -> None:
        if self.next_due is None:
            self.next_due = self.schedule.next_after(self.ctx.local, now_ms - 1)

    def tick(self, now_ms: int) -> None:
        while self.next_due is not None and now_ms >= self.next_due:
            due = self.next_due
            self.roll_call(due)
            self.next_due = self.schedule.next_after(self.ctx.local, due)

    def roll_call(self, due: int) -> None:
        roster, presence = self.ctx.roster, self.ctx.presence
        for pseudonym in roster.rooms:
            last = presence.known(pseudonym)
            if last is None or last[0] == IN or last[1] > due:
                continue
            if pseudonym in self.active or roster.on_leave(pseudonym, due):
                continue
            self._raise(pseudonym, due, last[1])

    def snapshot(self) -> Any:
        return {"next_due": self.next_due, "active": sorted(self.active)}

    def restore(self, state: Any) -> None:
        self.next_due = state.get("next_due")
        self.active = set(state.get("active", []))


class Dwell(_ResidentRule):
    """A resident whose last passage is `direction` and older than `hours` (welfare check)."""

    ticks = True

    def __init__(self, spec: RuleSpec, scope: Scope, ctx: Context) -> None:
        super().__init__(spec, scope, ctx)
        self.direction = str(spec.param("direction", IN))
        self.after_ms = int(float(spec.need("hours")) * 3_600_000)
        self.check_ms = int(float(spec.param("check_s", 60)) * 1000)
        self.next_check = 0

    def tick(self, now_ms: int) -> None:
        if now_ms < self.next_check:
            return
        self.next_check = now_ms + self.check_ms
        roster, presence = self.ctx.roster, self.ctx.presence
        for pseudonym in roster.rooms:
            if pseudonym in self.active:
                continue
            last = presence.known(pseudonym)
            if last is None or last[0] != self.direction:
                continue
            due = last[1] + self.after_ms
            if now_ms >= due and not roster.on_leave(pseudonym, now_ms):
                self._raise(pseudonym, due, last[1])

    def snapshot(self) -> Any:
        return {"active": sorted(self.active)}

    def restore(self, state: Any) -> None:
        self.active = set(state.get("active", []))
