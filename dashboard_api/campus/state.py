"""The campus view's memory: the latest alerts, device statuses and KPIs of every building,
updated from the buildings' northbound topics on the campus broker. Each change is told to
`on_change(kind, doc)` (the live stream): `alert`, `status`, `kpi`, `online`, `cmd-result`,
`building` (first heard of)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OPEN_STATES = ("open", "acknowledged")

Listener = Callable[[str, dict[str, Any]], None]


@dataclass(slots=True)
class BuildingState:
    id: str
    online: bool | None = None
    """The gateway's `north/online` flag (None: never heard of)."""
    kpis: dict[str, Any] | None = None
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_seen_ms: int | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    """The latest answers of the building to commands (newest last, bounded)."""

    def summary(self) -> dict[str, Any]:
        online = sum(1 for s in self.statuses.values() if s.get("online"))
        open_alerts = [a for a in self.alerts.values() if a.get("state") in OPEN_STATES]
        return {
            "id": self.id,
            "online": self.online,
            "last_seen_ms": self.last_seen_ms,
            "devices_total": len(self.statuses),
            "devices_online": online,
            "open_alerts": len(open_alerts),
            "critical_open": sum(1 for a in open_alerts if a.get("severity") == "critical"),
            "kpis": self.kpis,
        }


class CampusState:
    """Applies northbound messages; unknown topics and bad payloads are counted, not fatal."""

    def __init__(
        self,
        buildings: list[str] | None = None,
        keep_resolved: int = 500,
        on_change: Listener | None = None,
    ) -> None:
        self.buildings: dict[str, BuildingState] = {b: BuildingState(b) for b in buildings or ()}
        self.keep_resolved = keep_resolved
        self.on_change = on_change
        self.rejected = 0
        self.applied = 0

    def _emit(self, kind: str, doc: dict[str, Any]) -> None:
        if self.on_change is not None:
            self.on_change(kind, doc)

    def building(self, b: str) -> BuildingState:
        return self.buildings.setdefault(b, BuildingState(b))

    def apply(self, topic: str, payload: bytes, now_ms: int) -> bool:
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != "campus":
            self.rejected += 1
            return False
        b = parts[1]
        known = b in self.buildings
        try:
            if parts[2] == "alert":
                ok = self._alert(b, json.loads(payload))
            elif parts[2] == "north":
                ok = self._north(b, parts[3:], payload)
            else:
                ok = False
        except (ValueError, KeyError, TypeError):
            ok = False
        if not known and b in self.buildings:
            self._emit("building", {"building": b})
        if not ok:
            self.rejected += 1
            return False
        self.building(b).last_seen_ms = now_ms
        self.applied += 1
        return True

    def _alert(self, b: str, doc: Any) -> bool:
        alert = doc["alert"]
        if not isinstance(alert, dict) or doc.get("building", b) != b:
            return False
        self._merge(b, alert, doc.get("transition"))
        return True

    def _merge(self, b: str, alert: dict[str, Any], transition: Any) -> None:
        alerts = self.building(b).alerts
        old = alerts.get(alert["id"])
        if old is not None and old.get("updated_ms", 0) > alert.get("updated_ms", 0):
            return  # a resend of an older state
        if old is not None and old.get("updated_ms") == alert.get("updated_ms"):
            transition = None  # the same state again (a snapshot or a resend)
        history = (old or {}).get("transitions", [])
        transitions = [*history, transition] if transition is not None else history
        new = {**alert, "building": b, "transitions": transitions[-20:]}
        alerts[alert["id"]] = new
        self._trim(alerts)
        if new != old:
            self._emit("alert", _public(new))

    def _snapshot(self, b: str, doc: Any) -> bool:
        """The building's unresolved alerts: merged in; those the view holds as unresolved
        but absent from a newer snapshot were resolved meanwhile."""
        listed = doc["alerts"]
        if not isinstance(listed, list) or doc.get("building", b) != b:
            return False
        for alert in listed:
            self._merge(b, alert, None)
        ids = {a["id"] for a in listed}
        ts = int(doc["ts_ms"])
        for a in self.building(b).alerts.values():
            if a["id"] not in ids and a.get("state") in OPEN_STATES and a["updated_ms"] <= ts:
                a["state"] = "resolved"
                self._emit("alert", _public(a))
        return True

    def _trim(self, alerts: dict[str, dict[str, Any]]) -> None:
        resolved = [a for a in alerts.values() if a.get("state") == "resolved"]
        if len(resolved) > self.keep_resolved:
            resolved.sort(key=lambda a: a.get("updated_ms", 0))
            for a in resolved[: len(resolved) - self.keep_resolved]:
                del alerts[a["id"]]

    def _north(self, b: str, rest: list[str], payload: bytes) -> bool:
        bs = self.building(b)
        match rest:
            case ["online"]:
                online = payload.strip() == b"true"
                if online != bs.online:
                    bs.online = online
                    self._emit("online", {"building": b, "online": online})
            case ["kpi"]:
                kpis = json.loads(payload)
                if kpis != bs.kpis:
                    bs.kpis = kpis
                    self._emit("kpi", {"building": b, "kpis": kpis})
            case ["alerts"]:
                return self._snapshot(b, json.loads(payload))
            case ["status", device]:
                status = json.loads(payload)
                if status != bs.statuses.get(device):
                    bs.statuses[device] = status
                    self._emit("status", {"building": b, "device": device, "status": status})
            case ["cmd-result"]:
                result = json.loads(payload)
                bs.results = [*bs.results[-49:], result]
                self._emit("cmd-result", {"building": b, "result": result})
            case ["reading", _]:
                pass  # readings belong in the time-series store; the view keeps none
            case _:
                return False
        return True

    def alerts(
        self, building: str | None = None, states: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        out = [
            _public(a)
            for bs in self.buildings.values()
            if building is None or bs.id == building
            for a in bs.alerts.values()
            if not states or a.get("state") in states
        ]
        out.sort(key=lambda a: a.get("opened_ms", 0), reverse=True)
        return out

    def campus_kpis(self) -> dict[str, Any]:
        sums = [bs.summary() for bs in self.buildings.values()]
        return {
            "buildings": len(sums),
            "buildings_online": sum(1 for s in sums if s["online"]),
            "devices_total": sum(s["devices_total"] for s in sums),
            "devices_online": sum(s["devices_online"] for s in sums),
            "open_alerts": sum(s["open_alerts"] for s in sums),
            "critical_open": sum(s["critical_open"] for s in sums),
        }


def _public(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert as listed (a copy, without its transitions)."""
    return {k: v for k, v in alert.items() if k != "transitions"}
