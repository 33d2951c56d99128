"""What the engine reads from the collectors, in one place so names can change at integration.

The engine consumes the model items unchanged, except:
- camera tamper events become 0/1 readings `camera.tamper.<type>` of the camera
  (`camera.tamper` threshold rule: on for ≥ 10 s), so a brief lighting change raises nothing;
- gate statuses feed presence (a gate in `free` mode makes presence unknown);
- gate `pass` events with a card feed presence.
"""

from __future__ import annotations

from gateway.config.rules import InputNamesConfig
from gateway.model import DeviceStatus, Event, Reading

GATE_PASS = "gate.pass"
GATE_EVENTS = (
    "gate.pass",
    "gate.denied_no_permission",
    "gate.denied_time_window",
    "gate.denied_unknown_card",
    "gate.denied_blacklist",
    "gate.tailgate",
    "gate.reverse",
    "gate.forced",
    "gate.climb",
    "gate.timeout",
)
TERMINAL_TXN = "terminal.txn"
METER_METRICS = ("power", "power_factor", "voltage", "current", "energy")
SAFETY_METRICS = ("smoke", "fire_door", "water_leak", "tamper", "temperature", "humidity")
TAMPER_PREFIX = "camera.tamper."

Item = Reading | Event | DeviceStatus


class InputAdapter:
    def __init__(self, names: InputNamesConfig) -> None:
        self.tamper_kind = names.camera_tamper_kind
        self.crossing_kind = names.line_crossing_kind
        self.occupancy_prefix = names.occupancy_prefix

    def adapt_event(self, e: Event) -> Item:
        if e.kind == self.tamper_kind:
            state = e.data.get("state", "on")
            return Reading(
                e.device,
                TAMPER_PREFIX + str(e.data.get("type", "view")),
                e.ts_ms,
                1.0 if state in ("on", True, 1) else 0.0,
            )
        return e
