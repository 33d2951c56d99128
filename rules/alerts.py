"""The alert lifecycle: one alert per episode per rule and subject, open → acknowledged →
resolved, with who/when/why on every transition, deadlines per severity and escalation."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from gateway.config.rules import DeadlinesConfig
from gateway.model import Alert, AlertState, AlertTransition, Severity
from rules.kinds.base import Signal
from rules.spec import RuleSpec

SYSTEM = "system"
_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertNotFound(LookupError):
    pass


class InvalidTransition(ValueError):
    """E.g. acknowledging a resolved alert."""


@dataclass(frozen=True, slots=True)
class Change:
    """An alert's new state and the transition that led to it."""

    alert: Alert
    transition: AlertTransition


class _Vars(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, vars_: Mapping[str, Any]) -> str:
    try:
        return template.format_map(_Vars(vars_))
    except (ValueError, IndexError, AttributeError):
        return template


def alert_id(rule: str, subject: str, episode: str, opened_ms: int) -> str:
    digest = hashlib.sha1(f"{rule}|{subject}|{episode}|{opened_ms}".encode()).hexdigest()
    return f"{rule}:{digest[:16]}"


class AlertBook:
    """The alerts not yet resolved, keyed by (rule, subject, episode); pure, no I/O.

    Every method returns the `Change`s it made; the caller persists and publishes them.
    """

    def __init__(self, specs: Iterable[RuleSpec], deadlines: DeadlinesConfig) -> None:
        self.specs = {s.id: s for s in specs}
        self.ack_ms = {Severity(k): _ms(v) for k, v in deadlines.ack_s.items()}
        self.resolve_ms = {Severity(k): _ms(v) for k, v in deadlines.resolve_s.items()}
        self.active: dict[tuple[str, str, str], Alert] = {}
        self.by_id: dict[str, tuple[str, str, str]] = {}

    # -- loading -------------------------------------------------------------------------
    def load(self, alerts: Iterable[Alert]) -> None:
        """Adopt unresolved alerts read back from the store at start."""
        for a in alerts:
            if a.state is not AlertState.RESOLVED:
                key = (a.rule, a.subject, str(a.data.get("episode", "")))
                self.active[key] = a
                self.by_id[a.id] = key

    def get(self, alert_id_: str) -> Alert | None:
        key = self.by_id.get(alert_id_)
        return None if key is None else self.active.get(key)

    # -- from rules ----------------------------------------------------------------------
    def apply(self, sig: Signal) -> Change | None:
        spec = self.specs.get(sig.rule)
        if spec is None:
            return None
        key = (sig.rule, sig.subject, sig.episode)
        current = self.active.get(key)
        if sig.up:
            severity = sig.severity or spec.severity
            if current is None:
                return self._open(spec, key, sig, severity)
            return self._update(spec, current, sig, severity)
        if current is None:
            return None
        if spec.self_resolve:
            return self._transition(
                current,
                "resolve",
                SYSTEM,
                sig.ts_ms,
                "condition cleared",
                state=AlertState.RESOLVED,
            )
        data = dict(current.data)
        data["condition"] = "cleared"
        return self._transition(
            replace(current, data=data), "update", SYSTEM, sig.ts_ms, "condition cleared"
        )

    def _deadlines(self, severity: Severity, ts: int) -> tuple[int | None, int | None]:
        ack = self.ack_ms.get(severity)
        res = self.resolve_ms.get(severity)
        return (None if ack is None else ts + ack, None if res is None else ts + res)

    def _open(
        self, spec: RuleSpec, key: tuple[str, str, str], sig: Signal, severity: Severity
    ) -> Change:
        ack, res = self._deadlines(severity, sig.ts_ms)
        alert = Alert(
            id=alert_id(spec.id, sig.subject, sig.episode, sig.ts_ms),
            rule=spec.id,
            subject=sig.subject,
            severity=severity,
            state=AlertState.OPEN,
            opened_ms=sig.ts_ms,
            updated_ms=sig.ts_ms,
            message=render(spec.message, {"rule": spec.id, "subject": sig.subject, **sig.vars}),
            receivers=spec.receivers,
            tier=0,
            ack_deadline_ms=ack,
            resolve_deadline_ms=res,
            data={
                "episode": sig.episode,
                "title": spec.title,
                "vars": _jsonable(sig.vars),
                "occurrences": 1,
                "condition": "active",
            },
        )
        self.active[key] = alert
        self.by_id[alert.id] = key
        return Change(alert, self._record(alert, "open", SYSTEM, sig.ts_ms, alert.message))

    def _update(self, spec: RuleSpec, current: Alert, sig: Signal, severity: Severity) -> Change:
        data = dict(current.data)
        data["occurrences"] = int(data.get("occurrences", 1)) + 1
        data["condition"] = "active"
        data["vars"] = _jsonable(sig.vars)
        message = render(spec.message, {"rule": spec.id, "subject": sig.subject, **sig.vars})
        alert = replace(current, message=message, data=data)
        note = "condition raised again"
        if _RANK[severity] > _RANK[current.severity]:
            ack, res = self._deadlines(severity, sig.ts_ms)
            alert = replace(
                alert,
                severity=severity,
                ack_deadline_ms=(
                    ack if current.state is AlertState.OPEN else current.ack_deadline_ms
                ),
                resolve_deadline_ms=_min(current.resolve_deadline_ms, res),
            )
            note = f"severity raised to {severity}"
        return self._transition(alert, "update", SYSTEM, sig.ts_ms, note)

    # -- deadlines -----------------------------------------------------------------------
    def tick(self, now_ms: int) -> list[Change]:
        changes: list[Change] = []
        for current in list(self.active.values()):
            alert = current
            if (
                alert.state is AlertState.OPEN
                and alert.ack_deadline_ms is not None
                and now_ms >= alert.ack_deadline_ms
                and not alert.data.get("ack_overdue")
            ):
                changes.append(self._escalate(alert, "ack_overdue", alert.ack_deadline_ms))
                alert = changes[-1].alert
            if (
                alert.resolve_deadline_ms is not None
                and now_ms >= alert.resolve_deadline_ms
                and not alert.data.get("resolve_overdue")
            ):
                changes.append(self._escalate(alert, "resolve_overdue", alert.resolve_deadline_ms))
        return changes

    def _escalate(self, alert: Alert, flag: str, ts: int) -> Change:
        data = dict(alert.data)
        data[flag] = True
        tier = min(alert.tier + 1, max(len(alert.receivers) - 1, 0))
        to = alert.receivers[tier] if alert.receivers else "-"
        what = "acknowledged" if flag == "ack_overdue" else "resolved"
        note = f"not {what} by its deadline; escalated to {to}"
        return self._transition(replace(alert, tier=tier, data=data), "escalate", SYSTEM, ts, note)

    # -- operators -----------------------------------------------------------------------
    def act(
        self,
        alert_id_: str,
        action: str,
        actor: str,
        now_ms: int,
        *,
        note: str = "",
        assignee: str | None = None,
    ) -> Change:
        alert = self.get(alert_id_)
        if alert is None:
            raise AlertNotFound(alert_id_)
        if action == "acknowledge":
            if alert.state is not AlertState.OPEN:
                raise InvalidTransition(f"alert {alert_id_} is {alert.state}, not open")
            return self._transition(
                alert, "acknowledge", actor, now_ms, note, state=AlertState.ACKNOWLEDGED
            )
        if action == "assign":
            if not assignee:
                raise InvalidTransition("an assignment needs an assignee")
            return self._transition(
                replace(alert, assignee=assignee), "assign", actor, now_ms, note or assignee
            )
        if action == "resolve":
            if not note.strip():
                raise InvalidTransition("resolving an alert needs a note saying why")
            return self._transition(
                alert, "resolve", actor, now_ms, note, state=AlertState.RESOLVED
            )
        if action == "comment":
            if not note.strip():
                raise InvalidTransition("a comment needs text")
            return self._transition(alert, "comment", actor, now_ms, note)
        raise InvalidTransition(f"unknown action {action!r}")

    # -- plumbing ------------------------------------------------------------------------
    def _transition(
        self,
        alert: Alert,
        action: str,
        actor: str,
        ts: int,
        note: str,
        *,
        state: AlertState | None = None,
    ) -> Change:
        new_state = state or alert.state
        alert = replace(alert, state=new_state, updated_ms=max(alert.updated_ms, ts))
        key = self.by_id[alert.id]
        if new_state is AlertState.RESOLVED:
            self.active.pop(key, None)
            self.by_id.pop(alert.id, None)
        else:
            self.active[key] = alert
        return Change(alert, self._record(alert, action, actor, ts, note))

    @staticmethod
    def _record(alert: Alert, action: str, actor: str, ts: int, note: str) -> AlertTransition:
        return AlertTransition(
            alert_id=alert.id,
            ts_ms=ts,
            action=action,
            actor=actor,
            state=alert.state,
            severity=alert.severity,
            note=note,
            data={"tier": alert.tier, "assignee": alert.assignee},
        )


def _ms(seconds: int | None) -> int | None:
    return None if seconds is None else int(seconds) * 1000


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _jsonable(vars_: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, str | int | float | bool) or v is None else str(v)
        for k, v in vars_.items()
    }
