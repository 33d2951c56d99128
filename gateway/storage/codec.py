"""Conversions between the data model and table rows (JSON for free-form maps)."""

from __future__ import annotations

import json
from typing import Any

from gateway import jsontext
from gateway.model import (
    EMPTY,
    Alert,
    AlertState,
    AlertTransition,
    AuditRecord,
    DeadLetter,
    DeviceStatus,
    Event,
    JsonMap,
    Severity,
)

DEAD_LETTER_PAYLOAD_MAX = 4096
"""Bytes of a rejected payload that are kept."""


def dump_map(data: JsonMap) -> str | None:
    if not data:
        return None
    return jsontext.dumps(data if isinstance(data, dict) else dict(data))


def load_map(text: str | None) -> JsonMap:
    if not text:
        return EMPTY
    value = jsontext.loads(text)
    return value if isinstance(value, dict) else {"value": value}


def event_row(e: Event) -> tuple[Any, ...]:
    return (e.id, e.device, e.kind, e.ts_ms, e.received_ms, dump_map(e.data))


EVENT_COLUMNS = "rowid, id, device, kind, ts_ms, received_ms, data"


def event_from_row(row: tuple[Any, ...]) -> tuple[int, Event]:
    rowid, id_, device, kind, ts_ms, received_ms, data = row
    return int(rowid), Event(id_, device, kind, ts_ms, received_ms, load_map(data))


def status_row(s: DeviceStatus) -> tuple[Any, ...]:
    return (s.device, s.ts_ms, int(s.online), s.mode, dump_map(s.detail))


STATUS_COLUMNS = "device, ts_ms, online, mode, detail"


def status_from_row(row: tuple[Any, ...]) -> DeviceStatus:
    device, ts_ms, online, mode, detail = row
    return DeviceStatus(device, ts_ms, bool(online), mode, load_map(detail))


def alert_row(a: Alert) -> tuple[Any, ...]:
    return (
        a.id,
        a.rule,
        a.subject,
        a.severity.value,
        a.state.value,
        a.opened_ms,
        a.updated_ms,
        a.message,
        json.dumps(list(a.receivers)),
        a.tier,
        a.assignee,
        a.ack_deadline_ms,
        a.resolve_deadline_ms,
        dump_map(a.data),
    )


ALERT_COLUMNS = (
    "id, rule, subject, severity, state, opened_ms, updated_ms, message, receivers, tier,"
    " assignee, ack_deadline_ms, resolve_deadline_ms, data"
)


def alert_from_row(row: tuple[Any, ...]) -> Alert:
    (id_, rule, subject, severity, state, opened, updated, message, receivers, tier) = row[:10]
    assignee, ack_deadline, resolve_deadline, data = row[10:]
    return Alert(
        id=id_,
        rule=rule,
        subject=subject,
        severity=Severity(severity),
        state=AlertState(state),
        opened_ms=opened,
        updated_ms=updated,
        message=message,
        receivers=tuple(json.loads(receivers)),
        tier=tier,
        assignee=assignee,
        ack_deadline_ms=ack_deadline,
        resolve_deadline_ms=resolve_deadline,
        data=load_map(data),
    )


def transition_row(t: AlertTransition) -> tuple[Any, ...]:
    return (
        t.alert_id,
        t.ts_ms,
        t.action,
        t.actor,
        t.state.value,
        t.severity.value,
        t.note,
        dump_map(t.data),
    )


TRANSITION_COLUMNS = "alert_id, ts_ms, action, actor, state, severity, note, data"


def transition_from_row(row: tuple[Any, ...]) -> AlertTransition:
    alert_id, ts_ms, action, actor, state, severity, note, data = row
    return AlertTransition(
        alert_id, ts_ms, action, actor, AlertState(state), Severity(severity), note, load_map(data)
    )


def audit_row(r: AuditRecord) -> tuple[Any, ...]:
    return (r.ts_ms, r.actor, r.action, r.target, dump_map(r.detail))


AUDIT_COLUMNS = "ts_ms, actor, action, target, detail"


def audit_from_row(row: tuple[Any, ...]) -> AuditRecord:
    ts_ms, actor, action, target, detail = row
    return AuditRecord(ts_ms, actor, action, target, load_map(detail))


def dead_letter_row(d: DeadLetter) -> tuple[Any, ...]:
    payload = bytes(d.payload)
    return (
        d.ts_ms,
        d.source,
        d.device,
        d.topic,
        payload[:DEAD_LETTER_PAYLOAD_MAX],
        len(payload),
        d.reason,
    )


DEAD_LETTER_COLUMNS = "id, ts_ms, source, device, topic, payload, payload_size, reason"


def dead_letter_from_row(row: tuple[Any, ...]) -> tuple[int, int, DeadLetter]:
    """(id, original payload size, letter with the kept part of the payload)."""
    id_, ts_ms, source, device, topic, payload, size, reason = row
    return int(id_), int(size), DeadLetter(ts_ms, source, device, topic, bytes(payload), reason)
