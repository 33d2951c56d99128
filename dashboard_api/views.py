"""Turning stored items into API answers, with personal data removed where a role may not see it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dashboard_api.auth import Principal, Role
from dashboard_api.schemas import (
    AlertOut,
    AuditOut,
    DeviceOut,
    EventOut,
    MetricOut,
    StatusOut,
    TransitionOut,
)
from gateway.model import (
    Alert,
    AlertState,
    AlertTransition,
    AuditRecord,
    Catalog,
    DeviceInfo,
    DeviceKind,
    DeviceStatus,
)
from gateway.privacy import PSEUDONYM_PREFIX
from gateway.storage.store import StoredEvent

PERSONAL_KEYS = frozenset(
    {
        "name",
        "names",
        "resident",
        "resident_name",
        "residents",
        "card",
        "card_no",
        "cardNo",
        "pseudonym",
        "student_id",
        "phone",
    }
)
RESIDENT_MASK = "resident"
COUNSELLOR_RECEIVERS = frozenset({"counsellor", "辅导员"})


def scrub(data: Mapping[str, Any]) -> dict[str, Any]:
    """Drop personal keys and pseudonyms, recursively."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k in PERSONAL_KEYS or (isinstance(v, str) and v.startswith(PSEUDONYM_PREFIX)):
            continue
        out[k] = scrub(v) if isinstance(v, Mapping) else v
    return out


def is_personal(alert: Alert) -> bool:
    return alert.rule.startswith("resident.") or alert.subject.startswith(PSEUDONYM_PREFIX)


def may_see_names(p: Principal, alert: Alert) -> bool:
    """Admins always; counsellors for alerts addressed or assigned to them."""
    if p.role is Role.ADMIN:
        return True
    if p.role is not Role.COUNSELLOR:
        return False
    return (
        alert.rule.startswith("resident.")
        or bool(COUNSELLOR_RECEIVERS.intersection(alert.receivers))
        or alert.assignee == p.name
    )


def is_overdue(a: Alert, now_ms: int) -> bool:
    if a.state is AlertState.OPEN and a.ack_deadline_ms is not None and a.ack_deadline_ms <= now_ms:
        return True
    return (
        a.state is not AlertState.RESOLVED
        and a.resolve_deadline_ms is not None
        and a.resolve_deadline_ms <= now_ms
    )


def alert_device(a: Alert, catalog: Catalog) -> DeviceInfo | None:
    """The device an alert is about: its subject, or the device the rule names in its data."""
    vars_ = a.data.get("vars")
    named = vars_.get("device") if isinstance(vars_, Mapping) else None
    for key in (a.subject, a.data.get("device"), named):
        info = catalog.get(key) if isinstance(key, str) else None
        if info is not None:
            return info
    return None


def alert_floor(a: Alert, catalog: Catalog) -> int | None:
    floor = a.data.get("floor")
    if isinstance(floor, int):
        return floor
    info = alert_device(a, catalog)
    return None if info is None else info.floor


def alert_camera(a: Alert, catalog: Catalog) -> str | None:
    """The camera whose snapshot illustrates the alert, if it is a camera's alert."""
    info = alert_device(a, catalog)
    return info.id if info is not None and info.kind is DeviceKind.CAMERA else None


def alert_out(
    a: Alert,
    p: Principal,
    now_ms: int,
    catalog: Catalog,
    name: str | None = None,
    *,
    reveal: bool = False,
) -> AlertOut:
    """`reveal`: show personal data (the caller checked `may_see_names` and audits the read);
    lists and the live stream never reveal."""
    full = reveal and may_see_names(p, a)
    personal = is_personal(a)
    subject = RESIDENT_MASK if personal and p.role is Role.VIEWER else a.subject
    return AlertOut(
        id=a.id,
        rule=a.rule,
        subject=subject,
        severity=a.severity,
        state=a.state,
        opened_ms=a.opened_ms,
        updated_ms=a.updated_ms,
        message=a.message if not personal or full else _generic_message(a),
        receivers=list(a.receivers),
        tier=a.tier,
        assignee=a.assignee,
        ack_deadline_ms=a.ack_deadline_ms,
        resolve_deadline_ms=a.resolve_deadline_ms,
        overdue=is_overdue(a, now_ms),
        floor=alert_floor(a, catalog),
        snapshot_url=f"/api/v1/alerts/{a.id}/snapshot" if alert_camera(a, catalog) else None,
        resident_name=name if full else None,
        data=dict(a.data) if full else scrub(a.data),
    )


def _generic_message(a: Alert) -> str:
    # A rule's message may name the resident; roles without names get the rule id only.
    return a.rule


def transition_out(t: AlertTransition, full: bool) -> TransitionOut:
    return TransitionOut(
        ts_ms=t.ts_ms,
        action=t.action,
        actor=t.actor,
        state=t.state,
        severity=t.severity,
        note=t.note,
        data=dict(t.data) if full else scrub(t.data),
    )


def status_out(s: DeviceStatus) -> StatusOut:
    return StatusOut(ts_ms=s.ts_ms, online=s.online, mode=s.mode, detail=dict(s.detail))


def device_out(info: DeviceInfo, status: DeviceStatus | None, dead_letters: int) -> DeviceOut:
    return DeviceOut(
        id=info.id,
        kind=info.kind,
        floor=info.floor,
        room=info.room,
        zone=info.zone,
        metrics=[
            MetricOut(name=m.name, unit=m.unit, description=m.description) for m in info.metrics
        ],
        status=None if status is None else status_out(status),
        dead_letters=dead_letters,
    )


def event_out(e: StoredEvent, full: bool) -> EventOut:
    ev = e.event
    return EventOut(
        rowid=e.rowid,
        id=ev.id,
        device=ev.device,
        kind=ev.kind,
        ts_ms=ev.ts_ms,
        received_ms=ev.received_ms,
        data=dict(ev.data) if full else scrub(ev.data),
    )


def audit_out(r: AuditRecord) -> AuditOut:
    return AuditOut(
        ts_ms=r.ts_ms, actor=r.actor, action=r.action, target=r.target, detail=dict(r.detail)
    )
