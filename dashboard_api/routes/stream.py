"""The live stream (Server-Sent Events): alert changes, device status changes, KPI updates."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import StreamingResponse

from dashboard_api.auth import Principal
from dashboard_api.context import ALL, AUTH_RESPONSES, ApiContext, ctx, need
from dashboard_api.stream import StreamItem, sse_frames
from dashboard_api.views import alert_out, status_out
from gateway.model import Alert, DeviceStatus

router = APIRouter(prefix="/api/v1", tags=["stream"], responses=AUTH_RESPONSES)


def _payload(c: ApiContext, p: Principal, item: StreamItem) -> Any:
    if isinstance(item.payload, Alert):
        now = c.runtime.clock.now_ms()
        return alert_out(item.payload, p, now, c.runtime.catalog).model_dump(mode="json")
    if isinstance(item.payload, DeviceStatus):
        return {"device": item.payload.device, **status_out(item.payload).model_dump(mode="json")}
    return item.payload


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An SSE stream"}},
)
async def stream(
    p: Annotated[Principal, Depends(need(ALL))],
    c: Annotated[ApiContext, Depends(ctx)],
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    """Events `alert`, `status`, `kpi`, and `reset` (reload: the stream cannot resume from the
    given Last-Event-ID). Alerts are shown as the caller's role may see them, without names."""

    frames = sse_frames(
        c.hub, last_event_id, c.config.stream_keepalive_s, lambda item: _payload(c, p, item)
    )
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
