"""`create_campus_app(cfg)`: the campus view's API, fed by the campus broker.

It subscribes to every building's alert notifications (`campus/+/alert/#`, published by the
rule engine's notifier) and northbound topics (`campus/+/north/#`), keeps the latest state in
memory (retained statuses, KPIs and online flags come back on reconnect; alerts published
while the view was down are queued by the broker for its persistent session), and relays
acknowledge/resolve to the owning building on `campus/{building}/cmd/alert/{id}/{action}`.
Every change of that state also goes out on a live stream (server-sent events,
`GET /api/campus/v1/stream`), which the page follows.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Cookie, Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from dashboard_api.campus.state import OPEN_STATES, CampusState
from dashboard_api.campus.tickets import StreamTickets
from dashboard_api.stream import EventRing, StreamItem, sse_frames
from gateway.clock import Clock, SystemClock
from gateway.config.campus import CampusViewConfig
from gateway.sinks.northbound import command_topic

SUBSCRIPTIONS = ("campus/+/alert/#", "campus/+/north/#")
PAGE = Path(__file__).parent / "static"
COCKPIT_STATIC = Path(__file__).parents[1] / "static"
"""The building cockpit's style sheet and icon, shared by the campus page."""
_bearer = HTTPBearer(auto_error=False)
STREAM_PATH = "/api/campus/v1/stream"
TICKET_COOKIE = "campus_stream"


class ActionIn(BaseModel):
    note: str = Field("", max_length=2000)
    """Why; required to resolve."""


@dataclass(frozen=True, slots=True)
class CampusUserRef:
    name: str
    role: str


@dataclass(slots=True)
class CampusContext:
    config: CampusViewConfig
    state: CampusState
    clock: Clock
    hub: EventRing
    tickets: StreamTickets
    keepalive_s: float
    transport: Any = None
    """The `MqttTransport` while the app runs."""


def _ctx(request: Request) -> CampusContext:
    c: CampusContext = request.app.state.campus
    return c


Ctx = Annotated[CampusContext, Depends(_ctx)]


def _user(
    c: Ctx, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> CampusUserRef:
    if creds is not None:
        given = creds.credentials.encode()
        for u in c.config.users:
            if hmac.compare_digest(given, u.token.get_secret_value().encode()):
                return CampusUserRef(u.name, u.role)
    raise HTTPException(401, "a valid bearer token is required")


User = Annotated[CampusUserRef, Depends(_user)]


def _stream_user(
    c: Ctx,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    campus_stream: Annotated[str | None, Cookie(max_length=200)] = None,
) -> CampusUserRef:
    """A bearer token, or the ticket cookie the page got with one (`EventSource` sends no
    headers of its own)."""
    if creds is not None or not campus_stream:
        return _user(c, creds)
    name = c.tickets.user(campus_stream, c.clock.now_ms())
    for u in c.config.users:
        if u.name == name:
            return CampusUserRef(u.name, u.role)
    raise HTTPException(401, "the stream ticket is not valid (any more); get a new one")


StreamUser = Annotated[CampusUserRef, Depends(_stream_user)]


def create_campus_app(
    config: CampusViewConfig,
    *,
    state: CampusState | None = None,
    clock: Clock | None = None,
    stream_ring: int = 1000,
    keepalive_s: float = 15.0,
    ticket_ttl_s: float = 12 * 3600,
) -> FastAPI:
    """`stream_ring`: changes kept for clients resuming the live stream; `keepalive_s`: idle
    time after which the stream sends a comment (for proxies); `ticket_ttl_s`: how long a
    stream ticket lets the page's stream reconnect."""
    c = CampusContext(
        config=config,
        state=state or CampusState(config.buildings, config.keep_resolved),
        clock=clock or SystemClock(),
        hub=EventRing(stream_ring),
        tickets=StreamTickets(ticket_ttl_s),
        keepalive_s=keepalive_s,
    )
    c.state.on_change = c.hub.append

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        from collectors.mqtt.transport import Message, MqttTransport  # noqa: PLC0415

        transport: MqttTransport | None = None

        def on_message(m: Message) -> None:
            c.state.apply(m.topic, m.payload, c.clock.now_ms())
            if transport is not None:
                transport.ack([m])

        transport = MqttTransport(
            config.broker,
            subscriptions=SUBSCRIPTIONS,
            on_message=on_message,
            retained_on_resubscribe=True,
        )
        async with transport:
            c.transport = transport
            try:
                yield
            finally:
                c.transport = None
                c.hub.close()

    app = FastAPI(
        title="campus-edge campus view",
        version="1.0.0",
        description="Alerts, device status and KPIs across buildings.",
        openapi_url="/api/campus/v1/openapi.json",
        docs_url="/api/campus/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.campus = c

    @app.get("/api/campus/v1/buildings")
    async def buildings(c: Ctx, _: User) -> dict[str, Any]:
        """Building picker and campus KPIs."""
        return {
            "now_ms": c.clock.now_ms(),
            "campus": c.state.campus_kpis(),
            "buildings": [bs.summary() for bs in sorted(c.state.buildings.values(), key=_id)],
        }

    @app.get("/api/campus/v1/buildings/{building}")
    async def building(building: str, c: Ctx, _: User) -> dict[str, Any]:
        bs = c.state.buildings.get(building)
        if bs is None:
            raise HTTPException(404, f"no building {building!r}")
        return {**bs.summary(), "statuses": bs.statuses, "results": bs.results}

    @app.get("/api/campus/v1/alerts")
    async def alerts(
        c: Ctx,
        _: User,
        building: str | None = None,
        open_only: bool = False,
    ) -> dict[str, Any]:
        """All buildings' alerts (or one building's), newest opened first."""
        found = c.state.alerts(building, OPEN_STATES if open_only else ())
        return {"now_ms": c.clock.now_ms(), "alerts": found}

    @app.get("/api/campus/v1/alerts/{building}/{alert_id}")
    async def alert(building: str, alert_id: str, c: Ctx, _: User) -> dict[str, Any]:
        return _find(c, building, alert_id)

    @app.post("/api/campus/v1/alerts/{building}/{alert_id}/{action}", status_code=202)
    async def act(
        *,
        building: str,
        alert_id: str,
        action: Literal["acknowledge", "resolve"],
        body: ActionIn,
        c: Ctx,
        user: User,
    ) -> dict[str, Any]:
        """Relay an acknowledge/resolve to the owning building; the alert's new state arrives
        back through its notification (and the building's answer on `north/cmd-result`)."""
        if user.role != "operator":
            raise HTTPException(403, "only operators may act on alerts")
        found = _find(c, building, alert_id)
        if found.get("state") == "resolved":
            raise HTTPException(409, "the alert is already resolved")
        if action == "resolve" and not body.note.strip():
            raise HTTPException(422, "resolving needs a note saying why")
        if c.transport is None or not c.transport.connected:
            raise HTTPException(503, "the campus broker is unreachable; try again")
        request_id = uuid.uuid4().hex
        topic = command_topic(building, alert_id, action)
        doc = {"actor": user.name, "note": body.note, "request_id": request_id}
        await c.transport.publish(topic, json.dumps(doc, ensure_ascii=False).encode(), qos=1)
        return {"relayed": True, "topic": topic, "request_id": request_id}

    @app.post(f"{STREAM_PATH}/ticket", status_code=204)
    async def stream_ticket(request: Request, response: Response, c: Ctx, user: User) -> None:
        """Sets the cookie that lets this browser open the live stream (for `EventSource`,
        which cannot send the bearer token) for `ticket_ttl_s`."""
        response.set_cookie(
            TICKET_COOKIE,
            c.tickets.issue(user.name, c.clock.now_ms()),
            max_age=int(c.tickets.ttl_s),
            path=STREAM_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @app.get(
        STREAM_PATH,
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "An SSE stream"}},
    )
    async def stream(
        c: Ctx,
        _: StreamUser,
        last_event_id: Annotated[str | None, Header(max_length=64)] = None,
    ) -> StreamingResponse:
        """Server-sent events, one per change of the campus state: `alert` (as listed, with
        `building`), `status` {building, device, status}, `kpi` {building, kpis}, `online`
        {building, online}, `cmd-result` {building, result}, `building` {building} (first
        heard of); `reset` when the stream cannot resume from the given Last-Event-ID (reload
        the state). Keep-alive comments when idle."""
        return StreamingResponse(
            sse_frames(c.hub, last_event_id, c.keepalive_s, _payload),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(PAGE / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/campus", StaticFiles(directory=PAGE), name="campus")
    app.mount("/static", StaticFiles(directory=COCKPIT_STATIC), name="static")
    return app


def _payload(item: StreamItem) -> Any:
    return item.payload


def _id(bs: Any) -> str:
    return str(bs.id)


def _find(c: CampusContext, building: str, alert_id: str) -> dict[str, Any]:
    bs = c.state.buildings.get(building)
    found = bs.alerts.get(alert_id) if bs is not None else None
    if found is None:
        raise HTTPException(404, f"no alert {alert_id!r} in building {building!r}")
    return found
