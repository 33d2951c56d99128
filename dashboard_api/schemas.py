"""What the API answers and accepts (these models make up the OpenAPI description)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from dashboard_api.auth import MIN_PASSWORD, NAME_PATTERN, Role
from gateway.model import AlertState, DeviceKind, Severity


class AlertOut(BaseModel):
    id: str
    rule: str
    subject: str
    """Device, room or zone; masked as `resident` for roles that may not see who it is."""
    severity: Severity
    state: AlertState
    opened_ms: int
    updated_ms: int
    message: str
    receivers: list[str]
    tier: int
    assignee: str | None
    ack_deadline_ms: int | None
    resolve_deadline_ms: int | None
    overdue: bool
    """Past its acknowledge deadline while open, or past its resolve deadline while unresolved."""
    floor: int | None
    """The floor of the subject's device, room or zone where the catalog knows it."""
    snapshot_url: str | None
    """Where the camera snapshot of this alert is served, if it has one."""
    resident_name: str | None = None
    """Only for counsellors (their alerts) and admins; every such read is audited."""
    data: dict[str, Any]


class TransitionOut(BaseModel):
    ts_ms: int
    action: str
    actor: str
    state: AlertState
    severity: Severity
    note: str
    data: dict[str, Any]


class AlertDetail(BaseModel):
    alert: AlertOut
    transitions: list[TransitionOut]


class AlertList(BaseModel):
    alerts: list[AlertOut]
    now_ms: int


class AckIn(BaseModel):
    note: str = Field("", max_length=2000)


class AssignIn(BaseModel):
    assignee: str = Field(pattern=NAME_PATTERN)


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


class StatusOut(BaseModel):
    ts_ms: int
    online: bool
    mode: str | None
    detail: dict[str, Any]


class MetricOut(BaseModel):
    name: str
    unit: str
    description: str


class DeviceOut(BaseModel):
    id: str
    kind: DeviceKind
    floor: int | None
    room: str | None
    zone: str | None
    metrics: list[MetricOut]
    status: StatusOut | None
    dead_letters: int


class DeviceDetail(BaseModel):
    device: DeviceOut
    history: list[StatusOut]


class EventOut(BaseModel):
    rowid: int
    id: str
    device: str
    kind: str
    ts_ms: int
    received_ms: int
    data: dict[str, Any]


class EventList(BaseModel):
    events: list[EventOut]
    next_after: int | None
    """Pass as `after` to get the next page; null when this page is the last."""


class SeriesPointOut(BaseModel):
    ts_ms: int
    count: int
    min: float
    max: float
    mean: float
    last: float


class SeriesOut(BaseModel):
    device: str
    metric: str
    bucket: str
    points: list[SeriesPointOut]


class KindCount(BaseModel):
    online: int
    total: int


class Kpis(BaseModel):
    building: str
    building_name: str
    timezone: str
    """The building's IANA time zone: the cockpit shows local times in it."""
    now_ms: int
    day_start_ms: int
    """Local midnight of today in the building's time zone."""
    residents_in: int | None
    """在寝人数: residents whose last passage is `in` (null while presence data is pending)."""
    residents_total: int | None
    residents_in_share: float | None
    """在寝率."""
    return_rate: float | None
    """归寝率 at the last roll call."""
    late_returns_today: int | None
    """晚归 today."""
    alerts_today_by_rule: dict[str, int]
    open_alerts: int
    overdue_alerts: int
    median_ack_s: float | None
    """Median seconds from open to acknowledge, over alerts acknowledged today."""
    resolved_within_deadline_share: float | None
    """Share of alerts resolved today that met their resolve deadline."""
    devices_online: dict[str, KindCount]
    terminals_available: int
    terminals_total: int
    terminal_txns_today: int
    terminal_txns_failed_today: int
    power_now_w: float | None
    energy_today_kwh: float | None
    pending: list[str]
    """Figures that cannot be computed yet, with why."""


class DayCharts(BaseModel):
    hours_ms: list[int]
    """Start of each of the last 24 hours."""
    passages: list[int]
    power_w: list[float | None]
    alerts: list[int]


class AuditOut(BaseModel):
    ts_ms: int
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class LoginIn(BaseModel):
    name: str = Field(pattern=NAME_PATTERN)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    name: str
    role: Role
    via: str
    expires_ms: int


class LoginOut(Me):
    token: str
    """The session secret, also set as an HttpOnly cookie; send as `Authorization: Bearer`."""


class TokenIn(BaseModel):
    label: str = Field(pattern=NAME_PATTERN)
    role: Role = Role.VIEWER
    ttl_days: int | None = Field(None, ge=1, le=3650)


class TokenOut(BaseModel):
    id: str
    label: str
    role: Role
    created_by: str
    created_ms: int
    expires_ms: int
    revoked: bool


class TokenCreated(TokenOut):
    token: str
    """Shown once."""


class UserOut(BaseModel):
    name: str
    role: Role
    created_ms: int
    disabled: bool


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=MIN_PASSWORD, max_length=1024)


class PasswordSetIn(BaseModel):
    password: str | None = Field(None, min_length=MIN_PASSWORD, max_length=1024)
    """The new password; leave it out to have one generated."""


class PasswordSet(BaseModel):
    name: str
    password: str | None
    """The generated password, shown once; null when the request gave one."""


class ResidentOut(BaseModel):
    subject: str
    """The resident's card pseudonym."""
    room: str | None
    name: str | None
    present: bool | None


class ResidentList(BaseModel):
    available: bool
    """False while the rule engine's roster is not available to the API."""
    residents: list[ResidentOut]


class Health(BaseModel):
    ready: bool
    components: dict[str, str]
