"""Pure decoding: (topic, payload, arrival time) -> Event, DeviceStatus, nothing, or Rejected.

Each mapping (the built-in profiles and the configured vendor mappings) is compiled once into
a `Route`: a topic pattern, a getter per target field, value maps and a time parser. The
result is validated against the kind's schema before it becomes a model object, and card
numbers are replaced by their keyed pseudonyms here, before anything is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from collectors.mqtt.profiles import BUILTIN, DEVICE_KIND, SCHEMAS, FieldSpec
from gateway import jsontext
from gateway.config.mqtt import MappingConfig, MessageKind, MqttConfig
from gateway.model import DeviceKind, DeviceStatus, Event
from gateway.privacy import Pseudonymizer

_CARD = re.compile(r"^[0-9]{6,20}$")
_MISSING = object()


class Rejected(Exception):
    """A message that cannot be stored; `code` is a short class for metrics."""

    def __init__(self, code: str, reason: str, device: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.device = device


Getter = Callable[[Any], Any]


def _top_key(path: str) -> str | None:
    """The key when a field path is one top-level key (read with `dict.get`, no getter)."""
    return path if path != "$" and "." not in path and not path.isdigit() else None


def _getter(path: str) -> Getter:
    if path == "$":
        return lambda obj: obj
    keys = tuple(int(k) if k.isdigit() else k for k in path.split("."))

    def get(obj: Any) -> Any:
        for k in keys:
            if isinstance(k, int) and isinstance(obj, list):
                if k >= len(obj):
                    return _MISSING
                obj = obj[k]
            elif isinstance(obj, dict):
                obj = obj.get(k, _MISSING)
                if obj is _MISSING:
                    return _MISSING
            else:
                return _MISSING
        return obj

    if len(keys) == 1 and isinstance(keys[0], str):
        key = keys[0]
        return lambda obj: obj.get(key, _MISSING)
    return get


def _as_text(raw: Any) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw)


def _time_parser(fmt: str, tz: tzinfo) -> Callable[[Any], int]:
    def rfc3339(raw: Any) -> int:
        if not isinstance(raw, str):
            raise TypeError("a string")
        dt = datetime.fromisoformat(raw)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz)
        return int(dt.timestamp() * 1000)

    def epoch(scale: int) -> Callable[[Any], int]:
        def parse(raw: Any) -> int:
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise TypeError("a number")
            return int(raw * scale)

        return parse

    def pattern(raw: Any) -> int:
        if not isinstance(raw, str):
            raise TypeError("a string")
        dt = datetime.strptime(raw, fmt)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz)
        return int(dt.timestamp() * 1000)

    if fmt == "rfc3339":
        return rfc3339
    if fmt == "epoch_s":
        return epoch(1000)
    if fmt == "epoch_ms":
        return epoch(1)
    return pattern


@dataclass(slots=True)
class Route:
    name: str
    kind: MessageKind
    pattern: re.Pattern[str]
    getters: tuple[tuple[FieldSpec, Getter, str | None], ...]
    """Per target field: its spec, how to read it, and its key if it is a top-level one."""
    values: dict[str, dict[str, Any]]
    ignore: dict[str, frozenset[str]]
    defaults: dict[str, Any]
    devices: dict[str, str]
    parse_time: Callable[[Any], int]
    subscription: str
    plain: bool
    """No value maps, ignores or defaults: values are taken as they come."""


def compile_route(m: MappingConfig, building: str, tz: tzinfo) -> Route:
    topic = m.topic.replace("{building}", building)
    regex = "^" + re.escape(topic).replace(re.escape("{device}"), "(?P<device>[^/]+)") + "$"
    paths = [(spec, m.fields.get(spec.name, spec.name)) for spec in SCHEMAS[m.kind]]
    getters = tuple((spec, _getter(path), _top_key(path)) for spec, path in paths)
    return Route(
        name=m.name,
        kind=m.kind,
        pattern=re.compile(regex),
        getters=getters,
        values=dict(m.values),
        ignore={k: frozenset(v) for k, v in m.ignore.items()},
        defaults=dict(m.defaults),
        devices=dict(m.devices),
        parse_time=_time_parser(m.time_format, tz),
        subscription=topic.replace("{device}", "+"),
        plain=not (m.values or m.ignore or m.defaults),
    )


class Decoder:
    """Turns MQTT messages into model objects for one building."""

    def __init__(
        self,
        config: MqttConfig,
        building: str,
        tz: tzinfo,
        pseudonymizer: Pseudonymizer,
        known: dict[str, DeviceKind] | None = None,
    ) -> None:
        maps: list[MappingConfig] = list(BUILTIN) if config.builtin_profiles else []
        maps.extend(config.mappings)
        self.routes = [compile_route(m, building, tz) for m in maps]
        self._max_bytes = config.max_payload_bytes
        self._skew_ms = config.max_clock_skew_s * 1000
        self._pseudonymize = pseudonymizer.card
        self._cards: dict[str, str] = {}
        self._topics: dict[str, tuple[Route, str]] = {}
        self._accepted: dict[str, tuple[Route, str]] = {}
        """Topic -> (route, device) of topics whose device passed the checks."""
        if known is None:
            known = {e.id: e.kind for e in config.catalog_entries()}
        self._known = known

    @property
    def subscriptions(self) -> list[str]:
        return list(dict.fromkeys(r.subscription for r in self.routes))

    def route(self, topic: str) -> tuple[Route, str] | None:
        found = self._topics.get(topic)
        if found is not None:
            return found
        for r in self.routes:
            m = r.pattern.match(topic)
            if m is not None:
                if len(self._topics) >= 10_000:
                    self._topics.clear()
                found = self._topics[topic] = (r, m.group("device"))
                return found
        return None

    def decode(self, topic: str, payload: bytes, received_ms: int) -> Event | DeviceStatus | None:
        """The model object a message carries, None if its mapping ignores it, or raises
        `Rejected` with the reason."""
        accepted = self._accepted.get(topic)
        if accepted is None:
            accepted = self._accept(topic)
        route, device = accepted
        if len(payload) > self._max_bytes:
            raise Rejected(
                "too_large", f"payload of {len(payload)} bytes exceeds {self._max_bytes}", device
            )
        try:
            obj = jsontext.loads(payload)
        except ValueError as exc:
            raise Rejected("not_json", f"not JSON: {exc}", device) from None
        if not isinstance(obj, dict):
            raise Rejected("not_json", f"not a JSON object but {type(obj).__name__}", device)
        fields = self._fields(route, obj, device, received_ms)
        if fields is None:
            return None
        return _build(route.kind, device, fields, received_ms, self._card)

    def _accept(self, topic: str) -> tuple[Route, str]:
        """The route and device of a topic from a configured device of the right kind."""
        found = self.route(topic)
        if found is None:
            raise Rejected("unexpected_topic", f"no mapping matches topic {topic!r}")
        route, raw_device = found
        device = route.devices.get(raw_device, raw_device)
        kind = self._known.get(device)
        if kind is None:
            raise Rejected("unknown_device", f"unknown device {device!r} (not configured)")
        if kind is not DEVICE_KIND[route.kind]:
            raise Rejected(
                "wrong_device_kind",
                f"device {device!r} is a {kind}, not a {DEVICE_KIND[route.kind]}",
                device,
            )
        if len(self._accepted) >= 10_000:
            self._accepted.clear()
        accepted = self._accepted[topic] = (route, device)
        return accepted

    def _card(self, card_no: str) -> str:
        """The card's pseudonym; a building's few thousand cards are cached (HMAC per event
        costs more than decoding it)."""
        p = self._cards.get(card_no)
        if p is None:
            if len(self._cards) >= 100_000:
                self._cards.clear()
            p = self._cards[card_no] = self._pseudonymize(card_no)
        return p

    def _fields(
        self, route: Route, obj: dict[str, Any], device: str, now_ms: int
    ) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        plain = route.plain
        for spec, get, key in route.getters:
            name = spec.name
            raw = obj.get(key, _MISSING) if key is not None else get(obj)
            if plain:
                # The common case first: a built-in profile and a well-formed value.
                t = spec.type
                cls = raw.__class__
                if cls is str:
                    if t == "str":
                        if spec.choices is None or raw in spec.choices:
                            out[name] = raw
                            continue
                    elif t == "card":
                        if _CARD.match(raw) is not None:
                            out[name] = raw
                            continue
                    elif t == "time" and "online" not in out:
                        try:
                            ts = route.parse_time(raw)
                        except (TypeError, ValueError):
                            pass  # judged below, with the reason
                        else:
                            if -self._skew_ms <= ts - now_ms <= self._skew_ms:
                                out[name] = ts
                                continue
                elif t == "int" and cls is int and raw >= 0:
                    out[name] = raw
                    continue
            if raw is _MISSING or raw is None:
                raw = route.defaults.get(name, _MISSING)
                if raw is _MISSING:
                    if spec.required:
                        raise Rejected("missing_field", f"missing field {name!r}", device)
                    continue
            if spec.type == "time" and out.get("online") is False:
                continue  # a last will's time is its connection time: never judge its age
            ign = route.ignore.get(name)
            if ign is not None and _as_text(raw) in ign:
                return None
            vmap = route.values.get(name)
            if vmap is not None:
                text = _as_text(raw)
                if text in vmap:
                    raw = vmap[text]
                elif "*" in vmap:
                    raw = vmap["*"]
                else:
                    raise Rejected(
                        "unknown_value", f"{name}: unknown value {text!r} (no mapping)", device
                    )
                if raw is None:
                    if spec.required:
                        raise Rejected("missing_field", f"{name}: {text!r} maps to nothing", device)
                    continue
            out[name] = _check(
                spec, raw, device, parse_time=route.parse_time, now_ms=now_ms, skew_ms=self._skew_ms
            )
        return out


def _check(
    spec: FieldSpec,
    raw: Any,
    device: str,
    *,
    parse_time: Callable[[Any], int],
    now_ms: int,
    skew_ms: int,
) -> Any:
    name, t = spec.name, spec.type
    if t == "str":
        if not isinstance(raw, str):
            raise Rejected("wrong_type", f"{name}: expected a string, got {_tname(raw)}", device)
        if spec.choices is not None and raw not in spec.choices:
            raise Rejected("unknown_value", f"{name}: unknown value {raw!r}", device)
        return raw
    if t == "int":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise Rejected("wrong_type", f"{name}: expected an integer, got {_tname(raw)}", device)
        if raw < 0:
            raise Rejected("wrong_type", f"{name}: must be ≥ 0, got {raw}", device)
        return raw
    if t == "bool":
        if not isinstance(raw, bool):
            raise Rejected("wrong_type", f"{name}: expected true/false, got {_tname(raw)}", device)
        return raw
    if t == "card":
        if not isinstance(raw, str):
            raise Rejected("wrong_type", f"{name}: expected a string, got {_tname(raw)}", device)
        if not _CARD.match(raw):
            raise Rejected("wrong_type", f"{name}: expected 6–20 digits", device)
        return raw
    if t == "strlist":
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise Rejected("wrong_type", f"{name}: expected a list of strings", device)
        return raw
    try:
        ts = parse_time(raw)
    except (TypeError, ValueError) as exc:
        raise Rejected("wrong_type", f"{name}: not a valid time ({exc})", device) from None
    if abs(ts - now_ms) > skew_ms:
        hours = (ts - now_ms) / 3_600_000
        raise Rejected(
            "absurd_time", f"{name}: {raw!r} is {hours:+.1f} h off the gateway clock", device
        )
    return ts


def _tname(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _build(
    kind: MessageKind,
    device: str,
    f: dict[str, Any],
    received_ms: int,
    card: Callable[[str], str],
) -> Event | DeviceStatus:
    if kind == "gate_event":
        data: dict[str, Any] = {"direction": f["direction"], "serialNo": f["serialNo"]}
        if "cardNo" in f:
            data["card"] = card(f["cardNo"])
        if "personType" in f:
            data["personType"] = f["personType"]
        if "verifyMode" in f:
            data["verifyMode"] = f["verifyMode"]
        return Event(
            id=f"{device}:{f['serialNo']}",
            device=device,
            kind=f"gate.{f['event']}",
            ts_ms=f["time"],
            received_ms=received_ms,
            data=data,
        )
    if kind == "terminal_txn":
        data = {"service": f["service"], "result": f["result"], "serialNo": f["serialNo"]}
        if "durationMs" in f:
            data["durationMs"] = f["durationMs"]
        if "cardNo" in f:
            data["card"] = card(f["cardNo"])
        return Event(
            id=f"{device}:{f['serialNo']}",
            device=device,
            kind="terminal.txn",
            ts_ms=f["time"],
            received_ms=received_ms,
            data=data,
        )
    online: bool = f["online"]
    # A last will carries its connection time: the device went offline when it arrives.
    ts = f.get("time", received_ms) if online else received_ms
    if kind == "gate_status":
        return DeviceStatus(device=device, ts_ms=ts, online=online, mode=f.get("mode"))
    detail: dict[str, Any] = {"faults": f.get("faults", [])}
    if "paper" in f:
        detail["paper"] = f["paper"]
    return DeviceStatus(device=device, ts_ms=ts, online=online, mode=f.get("state"), detail=detail)
