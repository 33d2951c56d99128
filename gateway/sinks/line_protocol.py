"""InfluxDB line protocol for readings, events and device statuses (plain string formatting).

A point is keyed by its series (measurement + tags) and the device timestamp in milliseconds, so
sending it twice stores it once (InfluxDB overwrites, VictoriaMetrics deduplicates with
`-dedup.minScrapeInterval=1ms`). Input the server would mangle or reject is refused here with a
`LineError` naming the reason: VictoriaMetrics answers 204 even to lines it cannot parse and
stores an unparsable value as 0, so the sink must never send such a line.

Measurements:
- `reading,building=,device=,floor=,metric=,room= value=<float>[,quality=<int>i] <ts_ms>`
- `event,building=,device=,floor=,kind=,room= count=1i[,<data fields>] <ts_ms>`
- `device_status,building=,device=,floor=,room= online=<bool>[,mode="..."] <ts_ms>`
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.model import Catalog, DeviceStatus, Event, Quality, Reading

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_FORBIDDEN = ("\n", "\r")


class LineError(ValueError):
    """An item that cannot be written as a line the server stores faithfully."""


def escape_tag(text: str, what: str) -> str:
    """Escape a tag key, tag value or field key; refuse what line protocol cannot carry."""
    if not text:
        raise LineError(f"empty {what}")
    if any(c in text for c in _FORBIDDEN):
        raise LineError(f"{what} {text[:64]!r} contains a line break")
    if text.endswith("\\"):
        raise LineError(f"{what} {text[:64]!r} ends with a backslash")
    return text.translate(_TAG_ESCAPES)


def escape_measurement(text: str) -> str:
    if not text or any(c in text for c in _FORBIDDEN):
        raise LineError(f"invalid measurement {text[:64]!r}")
    return text.translate(_MEASUREMENT_ESCAPES)


def string_field(text: str) -> str:
    if any(c in text for c in _FORBIDDEN):
        text = text.replace("\r", " ").replace("\n", " ")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def float_field(value: float, what: str) -> str:
    v = float(value)
    if not math.isfinite(v):
        raise LineError(f"{what} is {v!r}: not a finite number")
    return repr(v)


def field_value(value: Any, strings: bool, what: str) -> str | None:
    """A field value in line protocol, or None for values that are not forwarded."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return float_field(value, what) if math.isfinite(value) else None
    if isinstance(value, str) and strings:
        return string_field(value)
    return None


@dataclass(slots=True)
class LineFormatter:
    """Turns gateway items into line-protocol lines; caches each series' tag prefix."""

    building: str
    catalog: Catalog | None = None
    location_tags: bool = True
    event_string_fields: bool = False
    event_fields_exclude: frozenset[str] = frozenset()
    max_line_bytes: int = 65_536
    _prefixes: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def _location(self, device: str) -> list[tuple[str, str]]:
        if not self.location_tags or self.catalog is None:
            return []
        info = self.catalog.get(device)
        if info is None:
            return []
        tags: list[tuple[str, str]] = []
        if info.floor is not None:
            tags.append(("floor", str(info.floor)))
        if info.room:
            tags.append(("room", info.room))
        return tags

    def _prefix(self, measurement: str, device: str, extra_key: str, extra: str) -> str:
        key = (measurement, device, extra)  # extra: the metric or the event kind
        prefix = self._prefixes.get(key)
        if prefix is None:
            tags = [("building", self.building), ("device", device), *self._location(device)]
            if extra_key:
                tags.append((extra_key, extra))
            tags.sort()
            body = ",".join(f"{k}={escape_tag(v, k)}" for k, v in tags)
            prefix = f"{escape_measurement(measurement)},{body} "
            if len(prefix.encode()) > self.max_line_bytes - 64:
                raise LineError(f"series key of {len(prefix.encode())} bytes is too long")
            if len(self._prefixes) > 200_000:
                self._prefixes.clear()
            self._prefixes[key] = prefix
        return prefix

    def _checked(self, line: str) -> str:
        if len(line) > self.max_line_bytes // 4 and len(line.encode()) > self.max_line_bytes:
            raise LineError(f"line of {len(line.encode())} bytes exceeds {self.max_line_bytes}")
        return line

    def reading(self, r: Reading) -> str:
        prefix = self._prefixes.get(("reading", r.device, r.metric))
        if prefix is None:
            prefix = self._prefix("reading", r.device, "metric", r.metric)
        v = r.value
        if type(v) is not float:
            try:
                v = float(v)
            except (TypeError, ValueError) as exc:
                raise LineError(f"value of {r.device}/{r.metric} is {v!r}: not a number") from exc
        if v - v != 0.0:  # NaN or infinite
            raise LineError(f"value of {r.device}/{r.metric} is {v!r}: not a finite number")
        if r.quality is Quality.GOOD:
            return f"{prefix}value={v!r} {int(r.ts_ms)}"
        return f"{prefix}value={v!r},quality={int(r.quality)}i {int(r.ts_ms)}"

    def event(self, e: Event) -> str:
        prefix = self._prefix("event", e.device, "kind", e.kind)
        parts = ["count=1i"]
        if self.event_string_fields:
            parts.append("id=" + string_field(e.id))
        parts.extend(self._data_fields(e.data))
        return self._checked(f"{prefix}{','.join(parts)} {int(e.ts_ms)}")

    def status(self, s: DeviceStatus) -> str:
        prefix = self._prefix("device_status", s.device, "", "")
        fields = "online=" + ("true" if s.online else "false")
        if s.mode is not None and self.event_string_fields:
            fields += ",mode=" + string_field(s.mode)
        return self._checked(f"{prefix}{fields} {int(s.ts_ms)}")

    def _data_fields(self, data: Mapping[str, Any]) -> Iterable[str]:
        for key in sorted(data):
            if key in self.event_fields_exclude or key in ("count", "id"):
                continue
            value = field_value(data[key], self.event_string_fields, key)
            if value is not None:
                yield f"{escape_tag(key, 'field key')}={value}"

    def format(self, item: object) -> str:
        """One line for a reading, event or device status; `LineError` for anything else."""
        if type(item) is Reading:
            return self.reading(item)
        if isinstance(item, Reading):
            return self.reading(item)
        if isinstance(item, Event):
            return self.event(item)
        if isinstance(item, DeviceStatus):
            return self.status(item)
        raise LineError(f"cannot forward a {type(item).__name__} upstream")
