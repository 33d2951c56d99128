"""Devices and their status, events, time series, KPIs and the day's charts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from dashboard_api.auth import Principal, Role
from dashboard_api.context import ALL, AUTH_RESPONSES, ApiContext, ctx, need
from dashboard_api.schemas import (
    DayCharts,
    DeviceDetail,
    DeviceOut,
    EventList,
    Kpis,
    SeriesOut,
    SeriesPointOut,
)
from dashboard_api.views import device_out, event_out, status_out
from gateway.model import DeviceKind
from gateway.storage.store import Bucket

router = APIRouter(prefix="/api/v1", responses=AUTH_RESPONSES)
Ctx = Annotated[ApiContext, Depends(ctx)]
Viewer = Annotated[Principal, Depends(need(ALL))]
MAX_RAW_SPAN_MS = 7 * 86_400_000
MAX_SPAN_MS = 3 * 366 * 86_400_000
Ms = Annotated[int, Query(ge=0, le=10**14)]


@router.get("/devices", tags=["devices"])
async def devices(
    _: Viewer,
    c: Ctx,
    kind: DeviceKind | None = None,
    floor: Annotated[int | None, Query(ge=-10, le=200)] = None,
) -> list[DeviceOut]:
    rt = c.runtime
    statuses = await rt.store.latest_statuses()
    rejected = await rt.store.dead_letter_counts()
    return [
        device_out(d, statuses.get(d.id), rejected.get(d.id, 0))
        for d in rt.catalog.devices.values()
        if (kind is None or d.kind is kind) and (floor is None or d.floor == floor)
    ]


@router.get(
    "/devices/{device_id}", tags=["devices"], responses={404: {"description": "No such device"}}
)
async def device(
    device_id: str,
    _: Viewer,
    c: Ctx,
    since: Annotated[int | None, Query(ge=0, le=10**14)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> DeviceDetail:
    rt = c.runtime
    info = rt.catalog.get(device_id)
    if info is None:
        raise HTTPException(404, f"no device {device_id!r} in the catalog")
    statuses = await rt.store.latest_statuses()
    rejected = await rt.store.dead_letter_counts()
    history = await rt.store.status_history(device_id, since_ms=since, limit=limit)
    return DeviceDetail(
        device=device_out(info, statuses.get(device_id), rejected.get(device_id, 0)),
        history=[status_out(s) for s in history],
    )


@router.get("/events", tags=["events"])
async def events(
    *,
    p: Viewer,
    c: Ctx,
    device: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=64, description="Kind prefix, e.g. gate.")] = None,
    since: Annotated[int | None, Query(ge=0, le=10**14)] = None,
    until: Annotated[int | None, Query(ge=0, le=10**14)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62, description="Row id to page after")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> EventList:
    """Events in arrival order. Card pseudonyms are shown to admins only (and audited)."""
    found = await c.runtime.store.events(
        device=device,
        kind_prefix=kind,
        since_ms=since,
        until_ms=until,
        after_rowid=after,
        limit=limit,
    )
    full = p.role is Role.ADMIN
    if full and found:
        await c.audit(p.name, "events.read", device or kind or "*", {"count": len(found)})
    return EventList(
        events=[event_out(e, full) for e in found],
        next_after=found[-1].rowid if len(found) == limit else None,
    )


@router.get("/series", tags=["series"], responses={422: {"description": "Bad range or bucket"}})
async def series(
    *,
    _: Viewer,
    c: Ctx,
    device: Annotated[str, Query(min_length=1, max_length=64)],
    metric: Annotated[str, Query(min_length=1, max_length=64)],
    since: Ms,
    until: Ms,
    bucket: Bucket = "raw",
) -> SeriesOut:
    """A metric of a device over [since, until), raw or in 1-minute / 1-hour buckets."""
    span = until - since
    if span <= 0:
        raise HTTPException(422, "`until` must be after `since`")
    if span > (MAX_RAW_SPAN_MS if bucket == "raw" else MAX_SPAN_MS):
        raise HTTPException(422, "range too long for this bucket: use 1m or 1h buckets")
    points = await c.runtime.store.series(device, metric, since, until, bucket)
    return SeriesOut(
        device=device,
        metric=metric,
        bucket=bucket,
        points=[
            SeriesPointOut(
                ts_ms=pt.ts_ms, count=pt.count, min=pt.min, max=pt.max, mean=pt.mean, last=pt.last
            )
            for pt in points
        ],
    )


@router.get("/kpis", tags=["kpis"])
async def kpis(_: Viewer, c: Ctx) -> Kpis:
    return await c.kpis.current()


@router.get("/charts/day", tags=["kpis"])
async def day_charts(_: Viewer, c: Ctx) -> DayCharts:
    """The last 24 hours per hour: gate passages, building power, alerts opened."""
    return await c.kpis.day_charts()
