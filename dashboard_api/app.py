"""The FastAPI application: `create_app(runtime)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from dashboard_api.auth import Accounts
from dashboard_api.context import ApiContext
from dashboard_api.kpis import KpiService
from dashboard_api.residents import ResidentDirectory, SqlResidents
from dashboard_api.routes import admin, alerts, auth, data, stream, system
from dashboard_api.stream import StreamHub
from gateway.bus import Stream
from gateway.runtime import Runtime

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
API_VERSION = "1.0.0"


async def _publish_kpis(c: ApiContext) -> None:
    rt = c.runtime
    while True:
        try:
            k = await c.kpis.current(max_age_s=0)
            await rt.bus.publish(Stream.KPI, k.model_dump(mode="json"))
        except Exception:
            log.exception("computing the KPIs failed; retrying in %s s", c.config.kpi_interval_s)
        await rt.clock.sleep(c.config.kpi_interval_s)


def create_app(runtime: Runtime, residents: ResidentDirectory | None = None) -> FastAPI:
    cfg = runtime.config.api
    directory = residents or SqlResidents(runtime.store)
    c = ApiContext(
        runtime=runtime,
        config=cfg,
        accounts=Accounts(
            runtime.store,
            runtime.clock,
            session_ttl_s=cfg.session_ttl_s,
            max_failures=cfg.login.max_failures,
            window_s=cfg.login.window_s,
        ),
        hub=StreamHub(runtime.bus, runtime.store, runtime.metrics, cfg.stream_ring),
        kpis=KpiService(runtime, directory),
        residents=directory,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        c.hub.start()
        ticker = asyncio.create_task(_publish_kpis(c), name="api-kpis")
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await c.hub.stop()

    app = FastAPI(
        title="campus-edge cockpit API",
        version=API_VERSION,
        description="Alerts, devices, events, series and KPIs of one dormitory building.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.ctx = c
    for r in (auth, alerts, data, admin, stream, system):
        app.include_router(r.router)

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "other")
        runtime.metrics.inc(
            "api_requests_total",
            help_="API requests answered",
            route=path,
            status=str(response.status_code),
        )
        return response

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/login", include_in_schema=False)
    async def login_page() -> FileResponse:
        return FileResponse(STATIC / "login.html", headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> RedirectResponse:
        return RedirectResponse("/static/favicon.svg")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
