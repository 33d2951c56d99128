"""The rule engine: routes model items to the rules that read them, turns their signals into
alert changes, and runs timers. Pure: an injected clock, no I/O; state snapshots are plain
JSON-able values so a restart resumes timers, windows, presence and open episodes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from gateway.clock import Clock
from gateway.config.rules import RulesConfig
from gateway.model import Alert, Catalog, DeviceStatus, Event, Reading
from rules.alerts import AlertBook, Change
from rules.inputs import GATE_PASS, InputAdapter, Item
from rules.kinds.base import Context, Rule
from rules.kinds.correlation import Correlation
from rules.kinds.events import CountInWindow, EventMatch, FailureRatio, StatusMatch
from rules.kinds.measured import StepChange, Threshold
from rules.kinds.presence import Absence, Dwell, RollCall
from rules.localtime import LocalClock
from rules.residents import Presence, Roster
from rules.spec import RuleError, RuleSpec, Scope, build_specs, resolve_scope

PRESENCE_KEY = "_presence"
GATE_MODES = frozenset({"normal", "free", "locked"})

Factory = Callable[[RuleSpec, Scope, Context], Rule]
Route = tuple[tuple[Rule, ...], tuple[str, ...]]


class Engine:
    def __init__(
        self,
        config: RulesConfig,
        *,
        catalog: Catalog,
        timezone: str,
        clock: Clock,
        roster: Roster | None = None,
        specs: list[RuleSpec] | None = None,
    ) -> None:
        self.clock = clock
        self.config = config
        self.inputs = InputAdapter(config.inputs)
        all_specs = specs if specs is not None else build_specs(config)
        self.specs = [s for s in all_specs if s.enabled]
        self.ctx = Context(
            catalog=catalog,
            local=LocalClock(timezone),
            roster=roster or Roster(),
            presence=Presence(),
            lanes=list(config.lanes),
            heartbeat_s=dict(config.heartbeat_s),
            holidays=list(config.holidays),
        )
        self.book = AlertBook(self.specs, config.deadlines)
        self.rules: list[Rule] = [self._build(s) for s in self.specs]
        self._by_metric: dict[str, Route] = {}
        self._by_kind: dict[str, Route] = {}
        self._status = [r for r in self.rules if r.wants_status]
        self._status_ids = tuple(r.id for r in self._status)
        self._seen = [r for r in self.rules if r.wants_seen]
        self._ticking = [r for r in self.rules if r.ticks]
        self.dirty: set[str] = set()
        self.started = False
        self.items = 0

    def _build(self, spec: RuleSpec) -> Rule:
        scope = resolve_scope(spec.scope, self.ctx.catalog)
        factories: dict[str, Factory] = {
            "event": EventMatch,
            "count": CountInWindow,
            "ratio": FailureRatio,
            "threshold": Threshold,
            "step": StepChange,
            "absence": Absence,
            "status": StatusMatch,
            "roll_call": RollCall,
            "dwell": Dwell,
            "correlation": lambda s, sc, c: Correlation(s, sc, c, self.inputs.crossing_kind),
        }
        try:
            return factories[spec.kind](spec, scope, self.ctx)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, RuleError):
                raise
            raise RuleError(f"rule {spec.id}: bad params for kind {spec.kind}: {exc}") from exc

    # -- routing -------------------------------------------------------------------------
    def _metric_route(self, metric: str) -> Route:
        rules = tuple(
            r
            for r in self.rules
            if metric in r.metrics or any(metric.startswith(p) for p in r.metric_prefixes)
        )
        route = self._by_metric[metric] = (rules, tuple(r.id for r in rules))
        return route

    def _kind_route(self, kind: str) -> Route:
        rules = tuple(r for r in self.rules if kind in r.event_kinds)
        route = self._by_kind[kind] = (rules, tuple(r.id for r in rules))
        return route

    # -- lifecycle -----------------------------------------------------------------------
    def start(
        self,
        state: dict[str, Any] | None = None,
        open_alerts: Iterable[Alert] = (),
        now_ms: int | None = None,
    ) -> None:
        """Restore rule state and unresolved alerts (after a restart), then arm the timers."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        restored = bool(state)
        if state:
            if PRESENCE_KEY in state:
                self.ctx.presence.restore(state[PRESENCE_KEY])
            for rule in self.rules:
                if rule.id in state and state[rule.id] is not None:
                    rule.restore(state[rule.id])
        self.book.load(open_alerts)
        for rule in self.rules:
            rule.start(now, restored)
        self.started = True

    def set_roster(self, roster: Roster) -> None:
        self.ctx.roster = roster

    def feed(self, item: Item, now_ms: int | None = None) -> list[Change]:
        if not self.started:
            self.start()
        now = self.clock.now_ms() if now_ms is None else now_ms
        self.items += 1
        if isinstance(item, Reading):
            self._reading(item, now)
        elif isinstance(item, Event):
            adapted = self.inputs.adapt_event(item)
            if isinstance(adapted, Reading):
                self._reading(adapted, now)
            else:
                if item.kind == GATE_PASS:
                    card = item.data.get("card")
                    if isinstance(card, str):
                        self.ctx.presence.on_pass(
                            card, str(item.data.get("direction", "")), item.ts_ms
                        )
                        self.dirty.add(PRESENCE_KEY)
                routed = self._by_kind.get(item.kind) or self._kind_route(item.kind)
                for rule in routed[0]:
                    rule.on_event(item, now)
                self.dirty.update(routed[1])
            for rule in self._seen:
                rule.on_seen(item.device, now)
        elif isinstance(item, DeviceStatus):
            if item.mode in GATE_MODES:
                self.ctx.presence.on_gate_mode(item.device, item.mode, item.ts_ms)
                self.dirty.add(PRESENCE_KEY)
            for rule in self._status:
                rule.on_status(item, now)
            self.dirty.update(self._status_ids)
        else:
            raise TypeError(f"the rule engine cannot read {type(item).__name__}")
        return self._drain() if self.ctx.out else []

    def _reading(self, r: Reading, now: int) -> None:
        routed = self._by_metric.get(r.metric) or self._metric_route(r.metric)
        for rule in routed[0]:
            rule.on_reading(r, now)
        self.dirty.update(routed[1])
        for rule in self._seen:
            rule.on_seen(r.device, now)

    def tick(self, now_ms: int | None = None) -> list[Change]:
        if not self.started:
            self.start()
        now = self.clock.now_ms() if now_ms is None else now_ms
        for rule in self._ticking:
            rule.tick(now)
        changes = self._drain() if self.ctx.out else []
        changes.extend(self.book.tick(now))
        if changes:
            self.dirty.update(c.alert.rule for c in changes)
        return changes

    def act(
        self,
        alert_id: str,
        action: str,
        actor: str,
        *,
        note: str = "",
        assignee: str | None = None,
        now_ms: int | None = None,
    ) -> Change:
        now = self.clock.now_ms() if now_ms is None else now_ms
        return self.book.act(alert_id, action, actor, now, note=note, assignee=assignee)

    def _drain(self) -> list[Change]:
        signals, self.ctx.out = self.ctx.out, []
        signals.sort(key=lambda s: s.ts_ms)
        changes: list[Change] = []
        for sig in signals:
            change = self.book.apply(sig)
            if change is not None:
                changes.append(change)
                self.dirty.add(sig.rule)
        return changes

    # -- persistence ---------------------------------------------------------------------
    def snapshot(self, only_dirty: bool = True) -> dict[str, Any]:
        """State to persist, per rule id (and presence); clears the dirty marks."""
        wanted = set(self.dirty) if only_dirty else {r.id for r in self.rules} | {PRESENCE_KEY}
        wanted.update(r.id for r in self._seen)
        self.dirty.clear()
        out: dict[str, Any] = {}
        if PRESENCE_KEY in wanted:
            out[PRESENCE_KEY] = self.ctx.presence.snapshot()
        for rule in self.rules:
            if rule.id in wanted:
                out[rule.id] = rule.snapshot()
        return out
