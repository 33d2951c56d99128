"""A small per-runtime metrics registry rendered in the Prometheus text format."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

LabelKey = tuple[tuple[str, str], ...]


def _key(labels: dict[str, str]) -> LabelKey:
    return tuple(sorted(labels.items()))


def _fmt_labels(key: LabelKey) -> str:
    if not key:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass(slots=True)
class _Family:
    name: str
    kind: str  # counter | gauge
    help: str
    values: dict[LabelKey, float] = field(default_factory=dict)
    callbacks: list[Callable[[], dict[LabelKey, float]]] = field(default_factory=list)


class Metrics:
    """Counters and gauges with labels; thread-safe (camera workers count from threads)."""

    def __init__(self, prefix: str = "campus_edge_") -> None:
        self._prefix = prefix
        self._families: dict[str, _Family] = {}
        self._lock = threading.Lock()

    def _family(self, name: str, kind: str, help_: str) -> _Family:
        fam = self._families.get(name)
        if fam is None:
            fam = self._families[name] = _Family(self._prefix + name, kind, help_)
        elif fam.kind != kind:
            raise ValueError(f"metric {name} is a {fam.kind}, not a {kind}")
        return fam

    def inc(self, name: str, amount: float = 1.0, help_: str = "", **labels: str) -> None:
        with self._lock:
            fam = self._family(name, "counter", help_)
            k = _key(labels)
            fam.values[k] = fam.values.get(k, 0.0) + amount

    def set(self, name: str, value: float, help_: str = "", **labels: str) -> None:
        with self._lock:
            self._family(name, "gauge", help_).values[_key(labels)] = value

    def gauge_callback(
        self, name: str, fn: Callable[[], dict[LabelKey, float]], help_: str = ""
    ) -> None:
        """Register a function computing a gauge's values at scrape time."""
        with self._lock:
            self._family(name, "gauge", help_).callbacks.append(fn)

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            fam = self._families.get(name)
            return 0.0 if fam is None else fam.values.get(_key(labels), 0.0)

    def total(self, name: str) -> float:
        with self._lock:
            fam = self._families.get(name)
            return 0.0 if fam is None else sum(fam.values.values())

    def render(self) -> str:
        with self._lock:
            fams = list(self._families.values())
            snapshot = [(f, dict(f.values), list(f.callbacks)) for f in fams]
        lines: list[str] = []
        for fam, values, callbacks in snapshot:
            for cb in callbacks:
                values.update(cb())
            if fam.help:
                help_text = fam.help.replace("\\", "\\\\").replace("\n", "\\n")
                lines.append(f"# HELP {fam.name} {help_text}")
            lines.append(f"# TYPE {fam.name} {fam.kind}")
            for k, v in sorted(values.items()):
                lines.append(f"{fam.name}{_fmt_labels(k)} {v:g}")
        return "\n".join(lines) + "\n"
