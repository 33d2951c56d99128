"""`create_campus_app(cfg)`: the campus view's API, fed by the campus broker.

It subscribes to every building's alert notifications (`campus/+/alert/#`, published by the
rule engine's notifier) and northbound topics (`campus/+/north/#`), keeps the latest state in
memory (retained statuses, KPIs and online flags come back on reconnect; alerts published
while the view was down are queued by the broker for its persistent session), and relays
acknowledge/resolve to the owning building on `campus/{building}/cmd/alert/{id}/{action}`.
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

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from dashboard_api.campus.state import OPEN_STATES, CampusState
from gateway.clock import Clock, SystemClock
from gateway.config.campus import CampusViewConfig
from gateway.sinks.northbound import command_topic

SUBSCRIPTIONS = ("campus/+/alert/#", "campus/+/north/#")
PAGE = Path(__file__).parent / "static"
COCKPIT_STATIC = Path(__file__).parents[1] / "static"
"""The building cockpit's style sheet and icon, shared by the campus page."""
_bearer = HTTPBearer(auto_error=False)


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


def create_campus_app(
    config: CampusViewConfig, *, state: CampusState | None = None, clock: Clock | None = None
) -> FastAPI:
    c = CampusContext(
        config=config,
        state=state or CampusState(config.buildings, config.keep_resolved),
        clock=clock or SystemClock(),
    )

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

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(PAGE / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/campus", StaticFiles(directory=PAGE), name="campus")
    app.mount("/static", StaticFiles(directory=COCKPIT_STATIC), name="static")
    return app


def _id(bs: Any) -> str:
    return str(bs.id)


def _find(c: CampusContext, building: str, alert_id: str) -> dict[str, Any]:
    bs = c.state.buildings.get(building)
    found = bs.alerts.get(alert_id) if bs is not None else None
    if found is None:
        raise HTTPException(404, f"no alert {alert_id!r} in building {building!r}")
    return found
