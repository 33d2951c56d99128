"""Residents: the roster and approved leave (by card pseudonym), and presence from passages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IN = "in"
OUT = "out"


@dataclass(slots=True)
class Roster:
    """Who lives where, and who is on approved leave when; card numbers only as pseudonyms."""

    rooms: dict[str, str] = field(default_factory=dict)
    leave: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    version: int = 0

    def room(self, pseudonym: str | None) -> str | None:
        return None if pseudonym is None else self.rooms.get(pseudonym)

    def on_leave(self, pseudonym: str, ts_ms: int) -> bool:
        """Whether approved leave covers `ts_ms` (`from` ≤ ts ≤ `to`)."""
        return any(a <= ts_ms <= b for a, b in self.leave.get(pseudonym, ()))


@dataclass(slots=True)
class Presence:
    """Last recorded passage per resident, and when any gate was last in free mode.

    A gate in `free` mode records no passages, so free mode at any time after a resident's last
    recorded passage makes that resident's presence unknown until their next passage.
    """

    last: dict[str, tuple[str, int]] = field(default_factory=dict)
    free_gates: dict[str, int] = field(default_factory=dict)
    last_free_ms: int = -1

    def on_pass(self, pseudonym: str, direction: str, ts_ms: int) -> None:
        prev = self.last.get(pseudonym)
        if prev is None or ts_ms >= prev[1]:
            self.last[pseudonym] = (direction, ts_ms)

    def on_gate_mode(self, gate: str, mode: str | None, ts_ms: int) -> None:
        if mode == "free":
            if gate not in self.free_gates:
                self.free_gates[gate] = ts_ms
            self.last_free_ms = max(self.last_free_ms, ts_ms)
        elif gate in self.free_gates:
            del self.free_gates[gate]
            self.last_free_ms = max(self.last_free_ms, ts_ms)

    def known(self, pseudonym: str) -> tuple[str, int] | None:
        """(direction, ts) of the last passage, or None when presence is unknown."""
        last = self.last.get(pseudonym)
        if last is None or self.free_gates or self.last_free_ms >= last[1]:
            return None
        return last

    def snapshot(self) -> dict[str, Any]:
        return {
            "last": {p: [d, t] for p, (d, t) in self.last.items()},
            "free": self.free_gates,
            "last_free_ms": self.last_free_ms,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.last = {p: (str(d), int(t)) for p, (d, t) in state.get("last", {}).items()}
        self.free_gates = {g: int(t) for g, t in state.get("free", {}).items()}
        self.last_free_ms = int(state.get("last_free_ms", -1))
