"""Rules as data: the built-in catalogue merged with a building's overrides and custom rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from gateway.config.rules import RulesConfig, ScopeConfig
from gateway.model import Catalog, DeviceKind, Severity

KINDS = (
    "event",
    "count",
    "ratio",
    "threshold",
    "step",
    "absence",
    "status",
    "correlation",
    "roll_call",
    "dwell",
)


class RuleError(ValueError):
    """A rule definition that cannot run; the message names the rule and the key."""


@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: str
    kind: str
    severity: Severity
    receivers: tuple[str, ...]
    message: str
    self_resolve: bool
    scope: ScopeConfig
    params: Mapping[str, Any]
    title: str = ""
    enabled: bool = True

    def param(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)

    def need(self, key: str) -> Any:
        if key not in self.params:
            raise RuleError(f"rule {self.id}: params.{key} is required for kind {self.kind}")
        return self.params[key]


@dataclass(frozen=True, slots=True)
class Scope:
    """A scope resolved against the catalogue: `devices` None means every device."""

    devices: frozenset[str] | None
    known: frozenset[str] = frozenset()
    """Catalogue devices; a device outside it passes a scope that only names kinds."""
    kinds_only: bool = False

    def admits(self, device: str) -> bool:
        if self.devices is None or device in self.devices:
            return True
        return self.kinds_only and device not in self.known


def load_catalogue() -> list[dict[str, Any]]:
    text = resources.files("rules").joinpath("catalogue.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    rules = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(rules, list):
        raise RuleError("rules/catalogue.yaml: top-level `rules:` list missing")
    return [dict(r) for r in rules]


def _severity(rule_id: str, value: Any) -> Severity:
    try:
        return Severity(str(value))
    except ValueError:
        raise RuleError(
            f"rule {rule_id}: severity {value!r} is not one of info, warning, critical"
        ) from None


def _spec(raw: Mapping[str, Any]) -> RuleSpec:
    rid = str(raw["id"])
    kind = str(raw.get("kind", ""))
    if kind not in KINDS:
        raise RuleError(f"rule {rid}: kind {kind!r} is not one of {', '.join(KINDS)}")
    receivers = tuple(str(r) for r in raw.get("receivers") or ())
    if not receivers:
        raise RuleError(f"rule {rid}: at least one receiver is required")
    scope = raw.get("scope") or {}
    return RuleSpec(
        id=rid,
        kind=kind,
        severity=_severity(rid, raw.get("severity", "warning")),
        receivers=receivers,
        message=str(raw.get("message", "{rule} on {subject}")),
        self_resolve=bool(raw.get("self_resolve", False)),
        scope=scope if isinstance(scope, ScopeConfig) else ScopeConfig(**scope),
        params=dict(raw.get("params") or {}),
        title=str(raw.get("title", "")),
        enabled=bool(raw.get("enabled", True)),
    )


def build_specs(config: RulesConfig) -> list[RuleSpec]:
    """The building's rules: catalogue (if on) with overrides applied, then custom rules."""
    specs: dict[str, RuleSpec] = {}
    if config.catalogue:
        for raw in load_catalogue():
            spec = _spec(raw)
            specs[spec.id] = spec
    for rid, ov in config.overrides.items():
        base = specs.get(rid)
        if base is None:
            known = ", ".join(sorted(specs)) or "none"
            raise RuleError(f"rules.overrides.{rid}: no such catalogue rule (known: {known})")
        params = dict(base.params)
        params.update(ov.params)
        specs[rid] = RuleSpec(
            id=rid,
            kind=base.kind,
            severity=_severity(rid, ov.severity) if ov.severity else base.severity,
            receivers=tuple(ov.receivers) if ov.receivers else base.receivers,
            message=ov.message if ov.message is not None else base.message,
            self_resolve=ov.self_resolve if ov.self_resolve is not None else base.self_resolve,
            scope=ov.scope if ov.scope is not None else base.scope,
            params=params,
            title=base.title,
            enabled=ov.enabled if ov.enabled is not None else base.enabled,
        )
    for custom in config.custom:
        if custom.id in specs:
            raise RuleError(f"rules.custom: id {custom.id} already names a catalogue rule")
        specs[custom.id] = _spec(custom.model_dump())
    return list(specs.values())


def resolve_scope(scope: ScopeConfig, catalog: Catalog) -> Scope:
    if not (scope.devices or scope.kinds or scope.floors or scope.rooms or scope.zones):
        return Scope(None)
    kinds = {DeviceKind(k) for k in scope.kinds}
    chosen: set[str] = set()
    for info in catalog.devices.values():
        if scope.devices and info.id not in scope.devices:
            continue
        if kinds and info.kind not in kinds:
            continue
        if scope.floors and info.floor not in scope.floors:
            continue
        if scope.rooms and info.room not in scope.rooms:
            continue
        if scope.zones and info.zone not in scope.zones:
            continue
        chosen.add(info.id)
    if scope.devices:
        # Devices named explicitly count even when the catalogue does not know them (yet).
        chosen.update(d for d in scope.devices if d not in catalog.devices)
    kinds_only = not (scope.devices or scope.floors or scope.rooms or scope.zones)
    return Scope(frozenset(chosen), frozenset(catalog.devices), kinds_only)
