"""Operator actions on alerts, for the API.

Each call records a transition (who, when, why), persists it with the alert's new state in one
transaction, publishes it on the bus (`Stream.ALERTS`, as a `rules.alerts.Change`) and returns
the alert's new state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.model import Alert
from rules.alerts import AlertNotFound, InvalidTransition

if TYPE_CHECKING:
    from rules.runner import RuleRunner

__all__ = ["AlertNotFound", "AlertService", "InvalidTransition"]


class AlertService:
    def __init__(self, runner: RuleRunner) -> None:
        self._runner = runner

    async def acknowledge(self, alert_id: str, actor: str, note: str = "") -> Alert:
        """open → acknowledged; `InvalidTransition` unless the alert is open."""
        return await self._runner.act(alert_id, "acknowledge", actor, note)

    async def assign(self, alert_id: str, actor: str, assignee: str) -> Alert:
        """Give an unresolved alert to someone (the state does not change)."""
        return await self._runner.act(alert_id, "assign", actor, assignee=assignee)

    async def resolve(self, alert_id: str, actor: str, note: str) -> Alert:
        """Close an unresolved alert; the note saying why is required."""
        return await self._runner.act(alert_id, "resolve", actor, note)

    async def comment(self, alert_id: str, actor: str, note: str) -> Alert:
        """Add a note to any alert, resolved ones included."""
        return await self._runner.act(alert_id, "comment", actor, note)
