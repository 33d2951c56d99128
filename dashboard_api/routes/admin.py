"""Residents (audited), the audit log and rejected input."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from dashboard_api.auth import Principal
from dashboard_api.context import ADMIN, AUTH_RESPONSES, NAMES, ApiContext, ctx, need
from dashboard_api.schemas import AuditOut, ResidentList, ResidentOut
from dashboard_api.views import audit_out

router = APIRouter(prefix="/api/v1", responses=AUTH_RESPONSES)
Ctx = Annotated[ApiContext, Depends(ctx)]


@router.get("/residents", tags=["residents"])
async def residents(
    p: Annotated[Principal, Depends(need(NAMES))],
    c: Ctx,
    room: Annotated[str | None, Query(max_length=32)] = None,
) -> ResidentList:
    """The roster with presence; for counsellors and admins, and every read is audited."""
    roster = await c.residents.roster()
    await c.audit(p.name, "residents.read", room or "*")
    if roster is None:
        return ResidentList(available=False, residents=[])
    return ResidentList(
        available=True,
        residents=[
            ResidentOut(subject=r.subject, room=r.room, name=r.name, present=r.present)
            for r in roster
            if room is None or r.room == room
        ],
    )


@router.get("/audit", tags=["admin"])
async def audit(
    _: Annotated[Principal, Depends(need(ADMIN))],
    c: Ctx,
    since: Annotated[int | None, Query(ge=0, le=10**14)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[AuditOut]:
    return [audit_out(r) for r in await c.runtime.store.audit_log(since_ms=since, limit=limit)]


@router.get("/dead-letters", tags=["admin"])
async def dead_letters(
    p: Annotated[Principal, Depends(need(ADMIN))],
    c: Ctx,
    device: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Rejected input per device, and the latest rejections (payloads may hold raw card numbers,
    so this is for admins and audited)."""
    store = c.runtime.store
    counts = await store.dead_letter_counts()
    recent = await store.dead_letters(device=device, limit=limit)
    await c.audit(p.name, "dead_letters.read", device or "*", {"count": len(recent)})
    return {
        "counts": counts,
        "recent": [
            {
                "id": d.id,
                "ts_ms": d.letter.ts_ms,
                "source": d.letter.source,
                "device": d.letter.device,
                "topic": d.letter.topic,
                "reason": d.letter.reason,
                "payload": d.letter.payload.decode("utf-8", "replace"),
            }
            for d in recent
        ],
    }
