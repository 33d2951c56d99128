"""What the API needs from the rule engine about residents (roster, presence, roll call).

The rule engine owns the roster and presence tables; until it provides a directory, the API
runs with `PendingResidents` and marks the residents-based KPIs as pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Resident:
    subject: str  # card pseudonym, as in alerts' subjects
    room: str | None
    name: str | None
    present: bool | None  # None: unknown (e.g. a gate in free mode since the last passage)


@dataclass(frozen=True, slots=True)
class Presence:
    residents_total: int
    residents_in: int
    return_rate: float | None  # at the last roll call, None before the first
    late_returns_today: int


class ResidentDirectory(Protocol):
    async def roster(self) -> list[Resident] | None:
        """All residents, or None when the roster is not available."""
        ...

    async def presence(self, day_start_ms: int, now_ms: int) -> Presence | None: ...

    async def name_of(self, subject: str) -> str | None: ...


class PendingResidents:
    """Used while the rule engine provides no directory."""

    async def roster(self) -> list[Resident] | None:
        return None

    async def presence(self, day_start_ms: int, now_ms: int) -> Presence | None:
        return None

    async def name_of(self, subject: str) -> str | None:
        return None
