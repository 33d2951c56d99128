"""What every rule kind shares: the signal it emits and the context it reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.config.rules import LaneConfig
from gateway.model import Catalog, DeviceStatus, Event, Reading, Severity
from rules.localtime import LocalClock
from rules.residents import Presence, Roster
from rules.spec import RuleSpec, Scope


@dataclass(slots=True)
class Signal:
    """A rule's verdict on one subject: the condition holds (`up`) or has cleared."""

    rule: str
    subject: str
    up: bool
    ts_ms: int
    vars: dict[str, Any] = field(default_factory=dict)
    severity: Severity | None = None
    episode: str = ""
    """Set by rules that raise one alert per occurrence (e.g. the triggering event id)."""


@dataclass(slots=True)
class Context:
    """Shared, read-mostly state of the engine that rules consult."""

    catalog: Catalog
    local: LocalClock
    roster: Roster
    presence: Presence
    lanes: list[LaneConfig] = field(default_factory=list)
    heartbeat_s: dict[str, float | None] = field(default_factory=dict)
    holidays: list[str] = field(default_factory=list)
    out: list[Signal] = field(default_factory=list)

    def where(self, device: str) -> dict[str, Any]:
        info = self.catalog.get(device)
        if info is None:
            return {"device": device, "floor": "?", "room": "?", "zone": "?", "device_kind": "?"}
        return {
            "device": device,
            "floor": info.floor if info.floor is not None else "?",
            "room": info.room or "?",
            "zone": info.zone or "?",
            "device_kind": str(info.kind),
        }

    def room_subject(self, device: str) -> str:
        info = self.catalog.get(device)
        return f"room:{info.room}" if info is not None and info.room else device


class Rule:
    """Base of the rule kinds. Subclasses declare what they read; the engine routes to them."""

    metrics: tuple[str, ...] = ()
    metric_prefixes: tuple[str, ...] = ()
    event_kinds: tuple[str, ...] = ()
    wants_status = False
    wants_seen = False
    ticks = False

    def __init__(self, spec: RuleSpec, scope: Scope, ctx: Context) -> None:
        self.spec = spec
        self.id = spec.id
        self.scope = scope
        self.ctx = ctx

    def emit(  # noqa: PLR0917
        self,
        subject: str,
        up: bool,
        ts_ms: int,
        vars_: dict[str, Any] | None = None,
        severity: Severity | None = None,
        episode: str = "",
    ) -> None:
        self.ctx.out.append(Signal(self.id, subject, up, ts_ms, vars_ or {}, severity, episode))

    def start(self, now_ms: int, restored: bool) -> None:
        """Called once before the first input (after `restore` when state was restored)."""

    def on_reading(self, r: Reading, now_ms: int) -> None:
        raise NotImplementedError

    def on_event(self, e: Event, now_ms: int) -> None:
        raise NotImplementedError

    def on_status(self, s: DeviceStatus, now_ms: int) -> None:
        raise NotImplementedError

    def on_seen(self, device: str, now_ms: int) -> None:
        raise NotImplementedError

    def tick(self, now_ms: int) -> None:
        raise NotImplementedError

    def snapshot(self) -> Any:
        return None

    def restore(self, state: Any) -> None:
        return None
