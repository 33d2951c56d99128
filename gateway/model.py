"""The gateway's data model: what flows from collectors to the store, the rules and the API.

Timestamps are UTC epoch milliseconds everywhere inside the gateway; local time appears only at
the edges (rule schedules, the cockpit). Metadata (units, floor, room) lives in the `Catalog`,
not on every reading.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

JsonMap = Mapping[str, Any]
EMPTY: JsonMap = MappingProxyType({})


def _empty() -> JsonMap:
    return EMPTY


class Quality(enum.IntEnum):
    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class DeviceKind(enum.StrEnum):
    GATE = "gate"
    TERMINAL = "terminal"
    METER = "meter"
    SAFETY_IO = "safety_io"
    CAMERA = "camera"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Reading:
    """One sample of one metric of one device."""

    device: str
    metric: str
    ts_ms: int
    value: float
    quality: Quality = Quality.GOOD


@dataclass(frozen=True, slots=True)
class Event:
    """A discrete fact with a stable id: a gate passage, a terminal transaction, a line crossing.

    `id` is stable across re-deliveries (for gates `"{device}:{serialNo}"`), so storing an event
    twice is a no-op. `kind` is namespaced by device kind, e.g. `gate.pass`, `terminal.txn`,
    `camera.line_crossing`, `camera.tamper`. `data` never holds a raw card number: collectors
    replace it with the keyed pseudonym (`gateway.privacy`).
    """

    id: str
    device: str
    kind: str
    ts_ms: int
    received_ms: int
    data: JsonMap = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device's state at a moment: online or not, and its mode (gates) or state (terminals)."""

    device: str
    ts_ms: int
    online: bool
    mode: str | None = None
    detail: JsonMap = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class Alert:
    """One episode of one rule on one subject (device, room, zone or resident)."""

    id: str
    rule: str
    subject: str
    severity: Severity
    state: AlertState
    opened_ms: int
    updated_ms: int
    message: str
    receivers: tuple[str, ...] = ()
    tier: int = 0
    assignee: str | None = None
    ack_deadline_ms: int | None = None
    resolve_deadline_ms: int | None = None
    data: JsonMap = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """One step in an alert's life: who did what, when and why. Nothing is ever deleted."""

    alert_id: str
    ts_ms: int
    action: str  # open, update, escalate, acknowledge, assign, comment, resolve
    actor: str  # "system" or a user name
    state: AlertState
    severity: Severity
    note: str = ""
    data: JsonMap = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    ts_ms: int
    actor: str
    action: str
    target: str
    detail: JsonMap = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input that was rejected at the edge, kept for inspection."""

    ts_ms: int
    source: str  # "mqtt", "modbus", "upstream", ...
    device: str | None
    topic: str
    payload: bytes  # truncated by the store
    reason: str


@dataclass(frozen=True, slots=True)
class MetricInfo:
    name: str
    unit: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Where a device is and what it measures."""

    id: str
    kind: DeviceKind
    floor: int | None = None
    room: str | None = None
    zone: str | None = None
    metrics: tuple[MetricInfo, ...] = ()
    labels: JsonMap = field(default_factory=_empty)


@dataclass(slots=True)
class Catalog:
    """The building's devices, built from configuration."""

    building: str
    devices: dict[str, DeviceInfo] = field(default_factory=dict)

    def add(self, info: DeviceInfo) -> None:
        if info.id in self.devices:
            raise ValueError(f"device id {info.id!r} is declared twice")
        self.devices[info.id] = info

    def extend(self, infos: Iterable[DeviceInfo]) -> None:
        for info in infos:
            self.add(info)

    def get(self, device: str) -> DeviceInfo | None:
        return self.devices.get(device)

    def of_kind(self, kind: DeviceKind) -> Iterator[DeviceInfo]:
        return (d for d in self.devices.values() if d.kind is kind)

    def on_floor(self, floor: int) -> Iterator[DeviceInfo]:
        return (d for d in self.devices.values() if d.floor == floor)

    def __len__(self) -> int:
        return len(self.devices)
