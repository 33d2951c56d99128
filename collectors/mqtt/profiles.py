"""The built-in device profiles (spec sections 1–2) as mappings, and each kind's schema."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.mqtt import MappingConfig, MessageKind
from gateway.model import DeviceKind

GATE_EVENTS = frozenset(
    {
        "pass",
        "denied_no_permission",
        "denied_time_window",
        "denied_unknown_card",
        "denied_blacklist",
        "tailgate",
        "reverse",
        "forced",
        "climb",
        "timeout",
    }
)
DIRECTIONS = frozenset({"in", "out"})
PERSON_TYPES = frozenset({"student", "staff", "visitor"})
VERIFY_MODES = frozenset({"card", "face", "qr", "password"})
GATE_MODES = frozenset({"normal", "free", "locked"})
TERMINAL_STATES = frozenset({"ok", "degraded", "fault"})
PAPER = frozenset({"ok", "low", "out"})
SERVICES = frozenset({"card_topup", "print", "certificate", "id_photo", "repair_request", "other"})
RESULTS = frozenset({"ok", "failed"})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: str  # int, str, bool, time, card, strlist
    required: bool = True
    choices: frozenset[str] | None = None


SCHEMAS: dict[MessageKind, tuple[FieldSpec, ...]] = {
    "gate_event": (
        FieldSpec("serialNo", "int"),
        FieldSpec("time", "time"),
        FieldSpec("event", "str", choices=GATE_EVENTS),
        FieldSpec("direction", "str", choices=DIRECTIONS),
        FieldSpec("cardNo", "card", required=False),
        FieldSpec("personType", "str", required=False, choices=PERSON_TYPES),
        FieldSpec("verifyMode", "str", required=False, choices=VERIFY_MODES),
    ),
    "gate_status": (
        FieldSpec("online", "bool"),
        FieldSpec("mode", "str", required=False, choices=GATE_MODES),
        FieldSpec("time", "time", required=False),
    ),
    "terminal_txn": (
        FieldSpec("serialNo", "int"),
        FieldSpec("time", "time"),
        FieldSpec("service", "str", choices=SERVICES),
        FieldSpec("result", "str", choices=RESULTS),
        FieldSpec("durationMs", "int", required=False),
        FieldSpec("cardNo", "card", required=False),
    ),
    "terminal_status": (
        FieldSpec("online", "bool"),
        FieldSpec("state", "str", required=False, choices=TERMINAL_STATES),
        FieldSpec("paper", "str", required=False, choices=PAPER),
        FieldSpec("faults", "strlist", required=False),
        FieldSpec("time", "time", required=False),
    ),
}

DEVICE_KIND: dict[MessageKind, DeviceKind] = {
    "gate_event": DeviceKind.GATE,
    "gate_status": DeviceKind.GATE,
    "terminal_txn": DeviceKind.TERMINAL,
    "terminal_status": DeviceKind.TERMINAL,
}

BUILTIN: tuple[MappingConfig, ...] = (
    MappingConfig(
        name="gate-event", kind="gate_event", topic="campus/{building}/gate/{device}/event"
    ),
    MappingConfig(
        name="gate-status", kind="gate_status", topic="campus/{building}/gate/{device}/status"
    ),
    MappingConfig(
        name="terminal-txn", kind="terminal_txn", topic="campus/{building}/terminal/{device}/txn"
    ),
    MappingConfig(
        name="terminal-status",
        kind="terminal_status",
        topic="campus/{building}/terminal/{device}/status",
    ),
)
