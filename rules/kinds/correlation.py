"""Sequence and correlation across sources: lane camera crossings against gate passes."""

from __future__ import annotations

import bisect
from collections import deque
from typing import Any

from gateway.model import DeviceStatus, Event
from rules.kinds.base import Context, Rule
from rules.spec import RuleSpec, Scope

_KEEP_MS = 15_000


class Correlation(Rule):
    """Each lane camera crossing of `count` people in a direction must be matched by as many
    gate `pass` events in that direction within ±`tolerance_s`; the check runs `settle_s` after
    the tolerance has passed (late gate events). Gates in `free` mode record no passes and are
    skipped. One alert per unmatched crossing."""

    wants_status = True
    ticks = True

    def __init__(self, spec: RuleSpec, scope: Scope, ctx: Context, crossing_kind: str) -> None:
        super().__init__(spec, scope, ctx)
        self.event_kinds = ("gate.pass", crossing_kind)
        self.crossing_kind = crossing_kind
        self.tol = int(float(spec.param("tolerance_s", 3)) * 1000)
        self.settle = int(float(spec.param("settle_s", 2)) * 1000)
        self.lane_of: dict[tuple[str, str | None], str] = {}
        for lane in ctx.lanes:
            self.lane_of[(lane.camera, lane.line)] = lane.gate
        self.gates = {lane.gate for lane in ctx.lanes}
        self.free: set[str] = set()
        # (gate, direction) -> passes [ts, used], in time order
        self.passes: dict[tuple[str, str], list[list[int]]] = {}
        # (ts, gate, direction, count, event id)
        self.crossings: deque[tuple[int, str, str, int, str]] = deque()

    def _gate(self, camera: str, line: Any) -> str | None:
        gate = self.lane_of.get((camera, str(line) if line is not None else None))
        return gate if gate is not None else self.lane_of.get((camera, None))

    def on_status(self, s: DeviceStatus, now_ms: int) -> None:
        if s.device in self.gates:
            if s.mode == "free":
                self.free.add(s.device)
            elif s.online:
                self.free.discard(s.device)

    def on_event(self, e: Event, now_ms: int) -> None:
        direction = str(e.data.get("direction", ""))
        if e.kind == "gate.pass":
            if e.device in self.gates:
                q = self.passes.setdefault((e.device, direction), [])
                if q and q[-1][0] > e.ts_ms:
                    bisect.insort(q, [e.ts_ms, 0])
                else:
                    q.append([e.ts_ms, 0])
            return
        gate = self._gate(e.device, e.data.get("line"))
        if gate is None or gate in self.free or not self.scope.admits(gate):
            return
        count = int(e.data.get("count", 1) or 1)
        self.crossings.append((e.ts_ms, gate, direction, count, e.id))

    def tick(self, now_ms: int) -> None:
        for q in self.passes.values():
            if q and q[0][0] < now_ms - _KEEP_MS:
                del q[: bisect.bisect_left(q, [now_ms - _KEEP_MS, -1])]
        while self.crossings and now_ms >= self.crossings[0][0] + self.tol + self.settle:
            ts, gate, direction, count, eid = self.crossings.popleft()
            matched = 0
            q = self.passes.get((gate, direction), [])
            for i in range(bisect.bisect_left(q, [ts - self.tol, -1]), len(q)):
                p = q[i]
                if matched >= count or p[0] > ts + self.tol:
                    break
                if not p[1]:
                    p[1] = 1
                    matched += 1
            if matched < count:
                vars_ = self.ctx.where(gate)
                vars_.update(direction=direction, seen=count, passes=matched, event_id=eid)
                self.emit(gate, True, ts + self.tol, vars_, episode=eid)

    def snapshot(self) -> Any:
        return {
            "free": sorted(self.free),
            "passes": [[g, d, list(q)] for (g, d), q in self.passes.items() if q],
            "crossings": [list(c) for c in self.crossings],
        }

    def restore(self, state: Any) -> None:
        self.free = set(state.get("free", []))
        self.passes = {
            (g, d): [[int(t), int(u)] for t, u in q] for g, d, q in state.get("passes", [])
        }
        self.crossings = deque(
            (int(t), str(g), str(d), int(c), str(i)) for t, g, d, c, i in state.get("crossings", [])
        )
