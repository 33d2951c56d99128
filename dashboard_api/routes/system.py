"""Liveness, readiness and Prometheus metrics (no login: for probes and scrapers on loopback)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse

from dashboard_api.context import ApiContext, ctx
from dashboard_api.schemas import Health

router = APIRouter(tags=["system"])
Ctx = Annotated[ApiContext, Depends(ctx)]


@router.get("/healthz")
async def healthz(c: Ctx) -> Health:
    """The process answers; what each component is doing."""
    h = c.runtime.health
    return Health(ready=h.ready(), components={k: str(v.state) for k, v in h.components.items()})


@router.get("/readyz", responses={503: {"model": Health, "description": "Not ready"}})
async def readyz(c: Ctx) -> JSONResponse:
    """200 when every component runs (or runs degraded), else 503."""
    h = c.runtime.health
    body = Health(ready=h.ready(), components={k: str(v.state) for k, v in h.components.items()})
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(c: Ctx) -> PlainTextResponse:
    rt = c.runtime
    for device, n in (await rt.store.dead_letter_counts()).items():
        rt.metrics.set("dead_letters", float(n), "Rejected inputs kept per device", device=device)
    for device, s in (await rt.store.latest_statuses()).items():
        rt.metrics.set("device_online", 1.0 if s.online else 0.0, "Device online", device=device)
    return PlainTextResponse(rt.metrics.render(), media_type="text/plain; version=0.0.4")
