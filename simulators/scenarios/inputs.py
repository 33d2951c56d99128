"""Scenario steps (device-level inputs) → model items, through the collectors' own decoding.

Gates and terminals speak MQTT JSON (shared/spec/devices.md): their payloads go through the MQTT
collector's `Decoder`, card numbers become pseudonyms there. Meters and safety modules are
Modbus registers already scaled by the Modbus collector's profiles; the camera analysis emits
`camera.*` events and `occupancy.<zone>` readings: for those three the step gives the values.
This is the one module to adjust if a collector renames what it produces.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from collectors.mqtt.decode import Decoder, Rejected
from gateway.config.mqtt import MqttConfig
from gateway.model import Catalog, DeviceKind, DeviceStatus, Event, Reading
from gateway.privacy import Pseudonymizer

Item = Reading | Event | DeviceStatus
STEP_KINDS = (
    "gate",
    "gate_status",
    "terminal_status",
    "terminal_txn",
    "meter",
    "safety",
    "camera",
)


class StepError(ValueError):
    pass


class ScenarioInputs:
    def __init__(
        self, building: str, timezone: str, catalog: Catalog, pseudonymizer: Pseudonymizer
    ) -> None:
        self.building = building
        self.tz = ZoneInfo(timezone)
        known = {d.id: d.kind for d in catalog.devices.values()}
        self.decoder = Decoder(MqttConfig(), building, self.tz, pseudonymizer, known)
        self.catalog = catalog
        self.serial: dict[str, int] = {}
        self.seq = 0

    def _time(self, ts_ms: int) -> str:
        return datetime.fromtimestamp(ts_ms / 1000, tz=self.tz).isoformat(timespec="milliseconds")

    def _mqtt(self, topic: str, body: dict[str, Any], ts_ms: int) -> Item:
        body.setdefault("time", self._time(ts_ms))
        try:
            item = self.decoder.decode(topic, json.dumps(body).encode(), ts_ms)
        except Rejected as exc:
            raise StepError(f"the MQTT collector rejects {topic} {body}: {exc}") from exc
        if item is None:
            raise StepError(f"the MQTT collector ignores {topic} {body}")
        return item

    def convert(self, step: dict[str, Any], ts_ms: int) -> list[Item]:
        kind = next((k for k in STEP_KINDS if k in step), None)
        if kind is None:
            raise StepError(f"step {step} names none of {', '.join(STEP_KINDS)}")
        device = str(step[kind])
        info = self.catalog.get(device)
        if info is None:
            raise StepError(f"step {step}: device {device!r} is not in the building")
        fields = {k: v for k, v in step.items() if k not in (kind, "at", "every", "until")}
        b = self.building
        if kind == "gate":
            n = self.serial[device] = self.serial.get(device, 0) + 1
            body: dict[str, Any] = {"serialNo": n, "direction": "in", **fields}
            if "card" in body:
                body["cardNo"] = str(body.pop("card"))
            return [self._mqtt(f"campus/{b}/gate/{device}/event", body, ts_ms)]
        if kind == "gate_status":
            body = {"online": True, "mode": "normal", **fields}
            return [self._mqtt(f"campus/{b}/gate/{device}/status", body, ts_ms)]
        if kind == "terminal_status":
            body = {"online": True, "state": "ok", "paper": "ok", "faults": [], **fields}
            return [self._mqtt(f"campus/{b}/terminal/{device}/status", body, ts_ms)]
        if kind == "terminal_txn":
            n = self.serial[device] = self.serial.get(device, 0) + 1
            body = {"serialNo": n, "service": "print", "result": "ok", "durationMs": 3000, **fields}
            return [self._mqtt(f"campus/{b}/terminal/{device}/txn", body, ts_ms)]
        if kind in ("meter", "safety"):
            want = DeviceKind.METER if kind == "meter" else DeviceKind.SAFETY_IO
            if info.kind is not want:
                raise StepError(f"step {step}: {device} is a {info.kind}, not a {want}")
            return [Reading(device, str(m), ts_ms, float(v)) for m, v in fields.items()]
        return self._camera(device, fields, ts_ms)

    def _camera(self, device: str, fields: dict[str, Any], ts_ms: int) -> list[Item]:
        out: list[Item] = []
        for what, value in fields.items():
            self.seq += 1
            eid = f"{device}:{ts_ms}:{self.seq}"
            if what == "occupancy":
                out += [
                    Reading(device, f"occupancy.{z}", ts_ms, float(n)) for z, n in value.items()
                ]
            elif what == "line_crossing":
                data = {"line": "lane", "direction": "in", "count": 1, **value}
                out.append(Event(eid, device, "camera.line_crossing", ts_ms, ts_ms, data))
            elif what == "tamper":
                data = {"type": "covered", "state": "on", **value}
                out.append(Event(eid, device, "camera.tamper", ts_ms, ts_ms, data))
            else:
                raise StepError(f"camera step: unknown field {what!r}")
        return out
