"""Alerts: the queue, one alert's history, and what operators do with them."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from collectors.camera.snapshots import find_snapshot
from dashboard_api.auth import Principal
from dashboard_api.context import ALL, AUTH_RESPONSES, HANDLERS, ApiContext, ctx, need
from dashboard_api.schemas import AckIn, AlertDetail, AlertList, AlertOut, AssignIn, NoteIn
from dashboard_api.views import (
    alert_camera,
    alert_floor,
    alert_out,
    is_personal,
    may_see_names,
    transition_out,
)
from gateway.model import Alert, AlertState, Severity
from rules.service import AlertNotFound, AlertService, InvalidTransition

# A camera alert raised from readings (crowding held 60 s, tamper held 10 s) shows the snapshot
# the camera took when the condition began, up to this long before the alert opened.
FLOOR_PAGE = 1000
"""Alerts read at a time when filtering by floor."""
SNAPSHOT_LOOKBACK_MS = 120_000
SNAPSHOT_SLACK_MS = 5_000

router = APIRouter(prefix="/api/v1", tags=["alerts"], responses=AUTH_RESPONSES)
Ctx = Annotated[ApiContext, Depends(ctx)]
Viewer = Annotated[Principal, Depends(need(ALL))]
Handler = Annotated[Principal, Depends(need(HANDLERS))]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such alert"}}
ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    409: {"description": "The alert's state does not allow this (e.g. already resolved)"},
    503: {"description": "The rule engine, which handles alerts, is not running"},
}


@router.get("/alerts")
async def list_alerts(
    *,
    p: Viewer,
    c: Ctx,
    state: Annotated[list[AlertState] | None, Query()] = None,
    rule: Annotated[str | None, Query(max_length=100)] = None,
    severity: Severity | None = None,
    floor: Annotated[int | None, Query(ge=-10, le=200)] = None,
    since: Annotated[int | None, Query(ge=0, description="Opened at or after (epoch ms)")] = None,
    until: Annotated[int | None, Query(ge=0, description="Opened before (epoch ms)")] = None,
    overdue: Annotated[bool, Query(description="Only alerts past a deadline now")] = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> AlertList:
    rt = c.runtime
    now = rt.clock.now_ms()
    states = tuple(state or ())
    if overdue and not states:
        states = (AlertState.OPEN, AlertState.ACKNOWLEDGED)  # the same set, but indexed
    query = partial(
        rt.store.alerts,
        states=states,
        rule=rule,
        severity=severity,
        since_ms=since,
        until_ms=until,
        overdue_at_ms=now if overdue else None,
    )
    if floor is None:
        found = await query(limit=limit)
    else:  # the floor comes from the catalogue: filter page by page until `limit` are found
        found = []
        page: list[Alert] = []
        while len(found) < limit:
            page = await query(after=page[-1] if page else None, limit=FLOOR_PAGE)
            found += [a for a in page if alert_floor(a, rt.catalog) == floor]
            if len(page) < FLOOR_PAGE:
                break
        found = found[:limit]
    return AlertList(alerts=[alert_out(a, p, now, rt.catalog) for a in found], now_ms=now)


async def _alert(c: ApiContext, alert_id: str) -> Alert:
    a = await c.runtime.store.alert(alert_id)
    if a is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    return a


async def _out(c: ApiContext, a: Alert, p: Principal) -> AlertOut:
    """The alert as `p` may see it; reading a resident's name is audited."""
    name = None
    reveal = is_personal(a) and may_see_names(p, a)
    if reveal:
        name = await c.residents.name_of(a.subject)
        await c.audit(p.name, "alert.read_personal", a.id, {"subject": a.subject})
    return alert_out(a, p, c.runtime.clock.now_ms(), c.runtime.catalog, name, reveal=reveal)


@router.get("/alerts/{alert_id}", responses=NOT_FOUND)
async def alert_detail(alert_id: str, p: Viewer, c: Ctx) -> AlertDetail:
    a = await _alert(c, alert_id)
    out = await _out(c, a, p)
    history = await c.runtime.store.transitions(alert_id)
    full = not is_personal(a) or may_see_names(p, a)
    return AlertDetail(alert=out, transitions=[transition_out(t, full) for t in history])


@router.get(
    "/alerts/{alert_id}/snapshot",
    response_class=Response,
    responses={**NOT_FOUND, 200: {"content": {"image/jpeg": {}}, "description": "The snapshot"}},
)
async def alert_snapshot(alert_id: str, p: Viewer, c: Ctx) -> Response:
    a = await _alert(c, alert_id)
    camera = alert_camera(a, c.runtime.catalog)
    if camera is None:
        raise HTTPException(404, "this alert is not a camera's: it has no snapshot")
    vars_ = a.data.get("vars")
    event_id = vars_.get("event_id") if isinstance(vars_, dict) else None
    jpeg = await find_snapshot(
        c.runtime.store,
        event_id=event_id if isinstance(event_id, str) else None,
        device=camera,
        since_ms=a.opened_ms - SNAPSHOT_LOOKBACK_MS,
        until_ms=a.updated_ms + SNAPSHOT_SLACK_MS,
    )
    if jpeg is None:
        raise HTTPException(404, "no snapshot was kept for this alert, or retention removed it")
    return Response(jpeg, media_type="image/jpeg")


def _service(c: ApiContext) -> AlertService:
    svc = c.runtime.alert_service
    if svc is None:
        raise HTTPException(503, "alert handling is unavailable: the rule engine is not running")
    return svc


async def _act(c: ApiContext, p: Principal, alert_id: str, action: str, **detail: str) -> AlertOut:
    svc = _service(c)
    try:
        if action == "acknowledge":
            a = await svc.acknowledge(alert_id, p.name, detail.get("note", ""))
        elif action == "assign":
            a = await svc.assign(alert_id, p.name, detail["assignee"])
        elif action == "resolve":
            a = await svc.resolve(alert_id, p.name, detail["note"])
        else:
            a = await svc.comment(alert_id, p.name, detail["note"])
    except AlertNotFound:
        raise HTTPException(404, f"no alert {alert_id!r}") from None
    except InvalidTransition as exc:
        raise HTTPException(409, str(exc) or f"cannot {action} this alert now") from None
    await c.audit(p.name, f"alert.{action}", alert_id, dict(detail))
    return alert_out(a, p, c.runtime.clock.now_ms(), c.runtime.catalog)


@router.post("/alerts/{alert_id}/acknowledge", responses=ACTION_RESPONSES)
async def acknowledge(alert_id: str, body: AckIn, p: Handler, c: Ctx) -> AlertOut:
    return await _act(c, p, alert_id, "acknowledge", note=body.note)


@router.post("/alerts/{alert_id}/assign", responses=ACTION_RESPONSES)
async def assign(alert_id: str, body: AssignIn, p: Handler, c: Ctx) -> AlertOut:
    return await _act(c, p, alert_id, "assign", assignee=body.assignee)


@router.post("/alerts/{alert_id}/resolve", responses=ACTION_RESPONSES)
async def resolve(alert_id: str, body: NoteIn, p: Handler, c: Ctx) -> AlertOut:
    return await _act(c, p, alert_id, "resolve", note=body.note)


@router.post("/alerts/{alert_id}/comment", responses=ACTION_RESPONSES)
async def comment(alert_id: str, body: NoteIn, p: Handler, c: Ctx) -> AlertOut:
    return await _act(c, p, alert_id, "comment", note=body.note)
