"""Operator actions on alerts (CONTRACT — implementation pending in the rule engine work).

The API calls these; each records a transition (who, when, why), persists it, publishes it on
the bus and returns the alert's new state.
"""

from __future__ import annotations

from gateway.model import Alert


class AlertNotFound(LookupError):
    pass


class InvalidTransition(ValueError):
    """E.g. acknowledging a resolved alert."""


class AlertService:
    async def acknowledge(self, alert_id: str, actor: str, note: str = "") -> Alert:
        raise NotImplementedError

    async def assign(self, alert_id: str, actor: str, assignee: str) -> Alert:
        raise NotImplementedError

    async def resolve(self, alert_id: str, actor: str, note: str) -> Alert:
        raise NotImplementedError

    async def comment(self, alert_id: str, actor: str, note: str) -> Alert:
        raise NotImplementedError
