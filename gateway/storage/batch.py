"""What one caller hands the store's single writer to commit in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.model import (
    Alert,
    AlertTransition,
    AuditRecord,
    DeadLetter,
    DeviceStatus,
    Event,
    Reading,
)

SqlParams = Sequence[Any]


@dataclass(slots=True)
class WriteBatch:
    """Items committed together: all of them or none.

    `sql` carries statements for tables that a component owns (its own migration creates them):
    each entry is (statement, list of parameter rows) and runs with `executemany`.
    """

    readings: list[Reading] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    statuses: list[DeviceStatus] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    transitions: list[AlertTransition] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    sql: list[tuple[str, list[SqlParams]]] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.readings)
            + len(self.events)
            + len(self.statuses)
            + len(self.alerts)
            + len(self.transitions)
            + len(self.audit)
            + len(self.dead_letters)
            + sum(len(rows) for _, rows in self.sql)
        )

    @property
    def durable(self) -> bool:
        """Whether the commit must reach the disk before it is reported (not readings alone)."""
        return bool(
            self.events
            or self.statuses
            or self.alerts
            or self.transitions
            or self.audit
            or self.dead_letters
            or self.sql
        )


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What the commit did: which events were new (False: a duplicate, already stored)."""

    new_events: tuple[bool, ...] = ()
