"""Rule kinds over discrete inputs: event match, count in a window, failure ratio, status match."""

from __future__ import annotations

from collections import deque
from typing import Any

from gateway.model import DeviceStatus, Event
from rules.kinds.base import Context, Rule
from rules.localtime import Window
from rules.spec import RuleError, RuleSpec, Scope


def _kinds(spec: RuleSpec) -> tuple[str, ...]:
    kinds = spec.need("kinds")
    if not isinstance(kinds, list) or not kinds:
        raise RuleError(f"rule {spec.id}: params.kinds must be a non-empty list of event kinds")
    return tuple(str(k) for k in kinds)


class EventMatch(Rule):
    """One alert per matching event (optionally only inside a local-time window, only for
    events carrying given data, only for residents on the roster)."""

    def __init__(self, spec: RuleSpec, scope: Scope, ctx: Context) -> None:
        super().__init__(spec, scope, ctx)
        self.event_kinds = _kinds(spec)
        where = spec.param("where") or {}
        self.where = {
            k: frozenset(v if isinstance(v, list) else [v]) for k, v in dict(where).items()
        }
        window = spec.param("window")
        self.window = Window.parse(window) if window else None
        self.resident = bool(spec.param("resident", False))

    def on_event(self, e: Event, now_ms: int) -> None:
        if not self.scope.admits(e.device):
            return
        data = e.data
        for key, allowed in self.where.items():
            if data.get(key) not in allowed:
                return
        if self.window is not None and not self.window.contains(
            self.ctx.local.minute_of_day(e.ts_ms)
        ):
            return
        vars_ = self.ctx.where(e.device)
        vars_.update(
            direction=data.get("direction", "?"),
            event=e.kind.rpartition(".")[2],
            local_time=self.ctx.local.text(e.ts_ms),
            event_id=e.id,
        )
        subject = e.device
        if self.resident:
            card = data.get("card")
            room = self.ctx.roster.room(card if isinstance(card, str) else None)
            if room is None:
                return
            vars_["room"] = room
            subject = f"resident:{card}"
        self.emit(subject, True, e.ts_ms, vars_, episode=e.id)


class CountInWindow(Rule):
    """Raise when a key (a data field such as the card, or the device) sees at least
    `min_count` matching events within `window_s`; several groups may be given."""

    ticks = True

    def __init__(self, spec: RuleSpec, scope: Scope, ctx: Context) -> None:
        super().__init__(spec, scope, ctx)
        self.event_kinds = _kinds(spec)
        groups = spec.need("groups")
        if not isinstance(groups, list) or not groups:
            raise RuleError(f"rule {spec.id}: params.groups must be a non-empty list")
        self.groups: list[tuple[str, int, int]] = []
        for g in groups:
            by, n, w = str(g.get("by", "device")), int(g["min_count"]), int(g["window_s"] * 1000)
            if n < 1 or w <= 0:
                raise RuleError(f"rule {spec.id}: min_count and window_s must be positive")
            self.groups.append((by, n, w))
        self.windows: list[dict[str, deque[int]]] = [{} for _ in self.groups]
        self.active: list[set[str]] = [set() for _ in self.groups]
        self.next_sweep = 0

    def _subject(self, by: str, key: str) -> str:
        return key if by == "device" else f"{by}:{key}"

    def on_event(self, e: Event, now_ms: int) -> None:
        if not self.scope.admits(e.device):
            return
        for i, (by, n, w) in enumerate(self.groups):
            key = e.device if by == "device" else e.data.get(by)
            if not isinstance(key, str):
                continue
            q = self.windows[i].setdefault(key, deque())
            q.append(e.ts_ms)
            while q and q[0] <= e.ts_ms - w:
                q.popleft()
            if len(q) >= n and key not in self.active[i]:
                self.active[i].add(key)
                vars_ = self.ctx.where(e.device)
                vars_.update(count=len(q), key=key, key_name=by, window_s=w // 1000)
                self.emit(self._subject(by, key), True, e.ts_ms, vars_)

    def tick(self, now_ms: int) -> None:
        sweep = now_ms >= self.next_sweep
        if sweep:
            self.next_sweep = now_ms + 10_000
        for i, (by, n, w) in enumerate(self.groups):
            windows = self.windows[i]
            if sweep:
                for key in [k for k, q in windows.items() if not q or q[-1] <= now_ms - w]:
                    del windows[key]
            for key in list(self.active[i]):
                q = windows.get(key)
                while q and q[0] <= now_ms - w:
                    q.popleft()
                if not q or len(q) < n:
                    self.active[i].discard(key)
                    self.emit(self._subject(by, key), False, now_ms)

    def snapshot(self) -> Any:
        return {
            "windows": [{k: list(q) for k, q in ws.items()} for ws in self.windows],
            "active": [sorted(a) for a in self.active],
        }

    def restore(self, state: Any) -> None:
        for i, ws in enumerate(state.get("windows", [])[: len(self.groups)]):
            self.windows[i] = {k: deque(int(t) for t in q) for k, q in ws.items()}
        for i, a in enumerate(state.get("active", [])[: len(self.groups)]):
            self.active[i] = set(a)


class FailureRatio(Rule):
    """Raise when at least `min_share` of at least `min_total` events in `window_s` on one
    device carry `field == value` (e.g. failed terminal transactions)."""

    ticks = True

    def __init__(self, spec: RuleSpec, scope: Scope, ctx: Context) -> None:
        super().__init__(spec, scope, ctx)
        self.event_kinds = _kinds(spec)
        self.field = str(spec.need("field"))
        self.value = spec.need("value")
        self.min_share = float(spec.need("min_share"))
        self.min_total = int(spec.need("min_total"))
        self.window = int(float(spec.need("window_s")) * 1000)
        self.seen: dict[str, deque[tuple[int, bool]]] = {}
        self.active: set[str] = set()

    def _check(self, device: str, ts_ms: int) -> None:
        q = self.seen.get(device)
        while q and q[0][0] <= ts_ms - self.window:
            q.popleft()
        total = len(q) if q else 0
        failed = sum(1 for _, f in q if f) if q else 0
        hit = total >= self.min_total and failed >= self.min_share * total
        if hit and device not in self.active:
            self.active.add(device)
            vars_ = self.ctx.where(device)
            vars_.update(failed=failed, total=total, window_s=self.window // 1000)
            self.emit(device, True, ts_ms, vars_)
        elif not hit and device in self.active:
            self.active.discard(device)
            self.emit(device, False, ts_ms)
        if q is not None and not q:
            del self.seen[device]

    def on_event(self, e: Event, now_ms: int) -> None:
        if not self.scope.admits(e.device):
            return
        self.seen.setdefault(e.device, deque()).append(
            (e.ts_ms, e.data.get(self.field) == self.value)
        )
        self._check(e.device, e.ts_ms)

    def tick(self, now_ms: int) -> None:
        for device in list(self.seen):
            self._check(device, now_ms)

    def snapshot(self) -> Any:
        return {
            "seen": {d: [[t, f] for t, f in q] for d, q in self.seen.items()},
            "active": sorted(self.active),
        }

    def restore(self, state: Any) -> None:
        self.seen = {
            d: deque((int(t), bool(f)) for t, f in q) for d, q in state.get("seen", {}).items()
        }
        self.active = set(state.get("active", []))


class StatusMatch(Rule):
    """Raise while a device's reported mode/state, or a detail field, has one of given values."""

    wants_status = True

    def __init__(self, spec: RuleSpec, scope: Scope, ctx: Context) -> None:
        super().__init__(spec, scope, ctx)
        self.modes = frozenset(str(m) for m in spec.param("modes", []))
        detail = spec.param("detail") or {}
        self.detail = {str(k): frozenset(v) for k, v in dict(detail).items()}
        if not self.modes and not self.detail:
            raise RuleError(f"rule {spec.id}: give params.modes or params.detail")
        self.active: set[str] = set()

    def on_status(self, s: DeviceStatus, now_ms: int) -> None:
        if not s.online or not self.scope.admits(s.device):
            return
        hit = s.mode in self.modes or any(
            s.detail.get(k) in allowed for k, allowed in self.detail.items()
        )
        if hit and s.device not in self.active:
            self.active.add(s.device)
            vars_ = self.ctx.where(s.device)
            vars_.update(
                mode=s.mode,
                paper=s.detail.get("paper", "?"),
                faults=",".join(str(f) for f in s.detail.get("faults", ()) or ()) or "-",
            )
            self.emit(s.device, True, s.ts_ms, vars_)
        elif not hit and s.device in self.active:
            self.active.discard(s.device)
            self.emit(s.device, False, s.ts_ms)

    def snapshot(self) -> Any:
        return sorted(self.active)

    def restore(self, state: Any) -> None:
        self.active = set(state or ())
