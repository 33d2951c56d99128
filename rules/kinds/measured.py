"""Rule kinds over measured values: threshold with hysteresis and duration, and step change."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from gateway.model import Reading, Severity
from rules.kinds.base import Context, Rule
from rules.spec import RuleError, RuleSpec, Scope

SUBJECTS = ("device", "room", "zone", "device_metric")


def _subject_mode(spec: RuleSpec) -> str:
    mode = str(spec.param("subject", "device"))
    if mode not in SUBJECTS:
        raise RuleError(f"rule {spec.id}: params.subject must be one of {', '.join(SUBJECTS)}")
    return mode


@dataclass(slots=True)
class _Held:
    since: int
    value: float
    fired: bool = False
    level: int = 0


class Threshold(Rule):
    """Raise when a metric is ≥ `above` (or rose by `rise.delta` within `rise.within_s`) for at
    least `for_s`; clear only when it falls below `clear_below` (hysteresis). `levels` raise the
    same alert's severity after longer durations."""

    ticks = True

    def __init__(self, spec: RuleSpec, scope: Scope, ctx: Context) -> None:
        super().__init__(spec, scope, ctx)
        metric = spec.param("metric")
        prefix = spec.param("metric_prefix")
        if not metric and not prefix:
            raise RuleError(f"rule {spec.id}: give params.metric or params.metric_prefix")
        self.metrics = (str(metric),) if metric else ()
        self.metric_prefixes = (str(prefix),) if prefix else ()
        self.prefix = str(prefix or "")
        self.above = float(spec.need("above"))
        self.clear_below = float(spec.param("clear_below", self.above))
        if self.clear_below > self.above:
            raise RuleError(f"rule {spec.id}: clear_below must not exceed above")
        self.for_ms = int(float(spec.param("for_s", 0)) * 1000)
        self.levels: list[tuple[int, Severity]] = sorted(
            (int(float(lv["after_s"]) * 1000), Severity(lv["severity"]))
            for lv in spec.param("levels", []) or []
        )
        rise = spec.param("rise")
        self.rise_delta = float(rise["delta"]) if rise else None
        self.rise_ms = int(float(rise["within_s"]) * 1000) if rise else 0
        self.recent: dict[tuple[str, str], deque[tuple[int, float]]] = {}
        self.mode = _subject_mode(spec)
        self.held: dict[tuple[str, str], _Held] = {}
        self.pending: set[tuple[str, str]] = set()

    def _subject(self, device: str, metric: str) -> str:
        if self.mode == "room":
            return self.ctx.room_subject(device)
        if self.mode == "zone":
            return f"zone:{metric[len(self.prefix) :]}" if self.prefix else device
        if self.mode == "device_metric":
            return f"{device}/{metric[len(self.prefix) :] if self.prefix else metric}"
        return device

    def _rising(self, key: tuple[str, str], ts: int, value: float, delta: float) -> bool:
        q = self.recent.get(key)
        if q is None:
            q = self.recent[key] = deque()
        while q and q[0][0] < ts - self.rise_ms:
            q.popleft()
        while q and q[-1][1] >= value:  # ascending values: q[0] is the window's minimum
            q.pop()
        q.append((ts, value))
        return value - q[0][1] >= delta

    def on_reading(self, r: Reading, now_ms: int) -> None:
        v = r.value
        rising = False
        delta = self.rise_delta
        if delta is not None:
            if not self.scope.admits(r.device):
                return
            rising = self._rising((r.device, r.metric), r.ts_ms, v, delta)
        elif v < self.above and not self.held:
            return  # the common case: below the threshold, nothing held anywhere
        key = (r.device, r.metric)
        held = self.held.get(key)
        if held is None:
            if (v >= self.above or rising) and self.scope.admits(r.device):
                held = self.held[key] = _Held(r.ts_ms, v)
                self.pending.add(key)
                self._check(key, held, max(now_ms, r.ts_ms))
            return
        if v < self.clear_below and not rising:
            del self.held[key]
            self.pending.discard(key)
            if held.fired:
                self.emit(self._subject(*key), False, r.ts_ms)
            return
        held.value = v
        if key in self.pending:
            self._check(key, held, max(now_ms, r.ts_ms))

    def _check(self, key: tuple[str, str], held: _Held, now_ms: int) -> None:
        if not held.fired:
            if now_ms < held.since + self.for_ms:
                return
            held.fired = True
            self.emit(self._subject(*key), True, held.since + self.for_ms, self._vars(key, held))
        while held.level < len(self.levels):
            after, severity = self.levels[held.level]
            if now_ms < held.since + after:
                return
            held.level += 1
            vars_ = self._vars(key, held)
            vars_["held_s"] = after // 1000
            self.emit(self._subject(*key), True, held.since + after, vars_, severity)
        self.pending.discard(key)

    def _vars(self, key: tuple[str, str], held: _Held) -> dict[str, Any]:
        vars_ = self.ctx.where(key[0])
        suffix = key[1][len(self.prefix) :] if self.prefix else key[1]
        vars_.update(
            metric=key[1],
            value=round(held.value, 2),
            held_s=self.for_ms // 1000,
            type=suffix,
        )
        if self.mode == "zone" and self.prefix:
            vars_["zone"] = suffix
        return vars_

    def tick(self, now_ms: int) -> None:
        for key in list(self.pending):
            self._check(key, self.held[key], now_ms)

    def snapshot(self) -> Any:
        return {
            "held": [[d, m, h.since, h.value, h.fired, h.level] for (d, m), h in self.held.items()],
            "recent": [[d, m, list(map(list, q))] for (d, m), q in self.recent.items() if q],
        }

    def restore(self, state: Any) -> None:
        self.held = {}
        self.pending = set()
        for d, m, since, value, fired, level in state.get("held", []):
            self.held[(d, m)] = _Held(int(since), float(value), bool(fired), int(level))
            if not fired or level < len(self.levels):
                self.pending.add((d, m))
        self.recent = {
            (d, m): deque((int(t), float(v)) for t, v in q) for d, m, q in state.get("recent", [])
        }


@dataclass(slots=True)
class _Step:
    recent: deque[tuple[int, float]] = field(default_factory=deque)
    baseline: float = 0.0
    since: int | None = None
    level: float = 0.0
    fired: bool = False


class StepChange(Rule):
    """Raise when a metric steps up by ≥ `min_step` over its recent minimum and stays up for
    `for_s`, while another metric of the same device meets a condition (e.g. a resistive load:
    power factor ≥ 0.95). The episode ends when the value falls back."""

    ticks = True

    def __init__(self, spec: RuleSpec, scope: Scope, ctx: Context) -> None:
        super().__init__(spec, scope, ctx)
        self.metric = str(spec.need("metric"))
        self.min_step = float(spec.need("min_step"))
        self.for_ms = int(float(spec.param("for_s", 0)) * 1000)
        self.baseline_ms = int(float(spec.param("baseline_s", 5)) * 1000)
        cond = spec.param("condition") or {}
        self.cond_metric = str(cond["metric"]) if cond else None
        self.cond_min = float(cond.get("min", float("-inf"))) if cond else 0.0
        self.cond_max = float(cond.get("max", float("inf"))) if cond else 0.0
        self.metrics = (self.metric, self.cond_metric) if self.cond_metric else (self.metric,)
        self.mode = _subject_mode(spec)
        self.state: dict[str, _Step] = {}
        self.other: dict[str, float] = {}
        self.pending: set[str] = set()

    def _subject(self, device: str) -> str:
        return self.ctx.room_subject(device) if self.mode == "room" else device

    def on_reading(self, r: Reading, now_ms: int) -> None:
        device, v = r.device, r.value
        if r.metric != self.metric:
            self.other[device] = v
            return
        st = self.state.get(device)
        if st is None:
            if not self.scope.admits(device):
                return
            st = self.state[device] = _Step(baseline=v)
        ts = r.ts_ms
        q = st.recent  # ascending values: q[0] is the window's minimum
        if st.since is None and not st.fired:
            limit = ts - self.baseline_ms
            while q and q[0][0] < limit:
                q.popleft()
            if q and v - q[0][1] >= self.min_step:
                st.baseline, st.since, st.level = q[0][1], ts, v
                self.pending.add(device)
                self._check(device, st, now_ms if now_ms > ts else ts)
            else:
                while q and q[-1][1] >= v:
                    q.pop()
                q.append((ts, v))
                st.baseline = v
            return
        if st.fired:
            if v < st.baseline + self.min_step / 2:
                st.fired = False
                st.since = None
                self.emit(self._subject(device), False, ts)
                q.clear()
                q.append((ts, v))
                st.baseline = v
        elif v - st.baseline < self.min_step * 0.8:
            st.since = None
            self.pending.discard(device)
            q.clear()
            q.append((ts, v))
            st.baseline = v
        else:
            st.level = v
            self._check(device, st, now_ms if now_ms > ts else ts)

    def _check(self, device: str, st: _Step, now_ms: int) -> None:
        if st.since is None or now_ms < st.since + self.for_ms:
            return
        if self.cond_metric is not None:
            other = self.other.get(device)
            if other is None or not self.cond_min <= other <= self.cond_max:
                return
        st.fired = True
        self.pending.discard(device)
        vars_ = self.ctx.where(device)
        vars_.update(
            step=round(st.level - st.baseline),
            value=round(st.level, 1),
            pf=self.other.get(device, "?"),
        )
        self.emit(self._subject(device), True, st.since + self.for_ms, vars_)

    def tick(self, now_ms: int) -> None:
        for device in list(self.pending):
            self._check(device, self.state[device], now_ms)

    def snapshot(self) -> Any:
        return {
            "state": {
                d: [list(map(list, s.recent)), s.baseline, s.since, s.level, s.fired]
                for d, s in self.state.items()
            },
            "other": self.other,
        }

    def restore(self, state: Any) -> None:
        self.state = {}
        self.pending = set()
        for d, (recent, baseline, since, level, fired) in state.get("state", {}).items():
            self.state[d] = _Step(
                deque((int(t), float(v)) for t, v in recent),
                float(baseline),
                None if since is None else int(since),
                float(level),
                bool(fired),
            )
            if since is not None and not fired:
                self.pending.add(d)
        self.other = {d: float(v) for d, v in state.get("other", {}).items()}
