"""The campus view's live stream (SSE) on the real app and a real campus Mosquitto: what a
building gateway publishes northbound arrives as events; resuming with Last-Event-ID, resets,
keep-alives; bearer token or the page's ticket cookie."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI

from collectors.mqtt.transport import MqttTransport
from dashboard_api.campus.app import STREAM_PATH, create_campus_app
from gateway.clock import ManualClock
from gateway.config.campus import CampusViewConfig
from gateway.config.mqtt import BrokerConfig
from tests.fixtures.mosquitto import Mosquitto
from tests.test_api_harness import SseEvent, SseReader

TOKEN = "campus-token-0123456789"
VIEWER_TOKEN = "viewer-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class _Body(httpx.AsyncByteStream):
    def __init__(self, chunks: asyncio.Queue[bytes | None], gone: asyncio.Event) -> None:
        self._chunks = chunks
        self._gone = gone
        self.task: asyncio.Task[None] | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self._chunks.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self._gone.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 5)


class StreamingAsgi(httpx.AsyncBaseTransport):
    """httpx's ASGITransport hands over a response only once the app has finished it; this one
    passes the body on as the app sends it, so an endless SSE response can be read, and
    closing it tells the app the client is gone."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.partition(b"?")[0],
            "query_string": request.url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 50000),
            "server": (request.url.host, request.url.port or 80),
        }
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]]
        started = asyncio.get_running_loop().create_future()
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        gone = asyncio.Event()
        asked = False

        async def receive() -> dict[str, Any]:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result((message["status"], message.get("headers", [])))
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    chunks.put_nowait(message["body"])
                if not message.get("more_body"):
                    chunks.put_nowait(None)

        async def run() -> None:
            try:
                await self._app(scope, receive, send)
            except Exception as exc:
                if not started.done():
                    started.set_exception(exc)
            finally:
                chunks.put_nowait(None)

        stream = _Body(chunks, gone)
        stream.task = asyncio.create_task(run())
        status, headers = await started
        return httpx.Response(status, headers=headers, stream=stream, request=request)


def campus_config(port: int, client_id: str = "campus-view") -> CampusViewConfig:
    return CampusViewConfig.model_validate(
        {
            "broker": {"port": port, "client_id": client_id},
            "buildings": ["b1", "b2"],
            "users": [
                {"name": "alice", "token": TOKEN},
                {"name": "desk", "token": VIEWER_TOKEN, "role": "viewer"},
            ],
        }
    )


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (subscribed on the campus broker) and a client streaming from it."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=StreamingAsgi(app), base_url="http://campus") as client,
    ):
        await asyncio.wait_for(app.state.campus.transport.wait_subscribed(), 10)
        yield client


@contextlib.asynccontextmanager
async def building_gateway(port: int, b: str = "b2") -> AsyncIterator[MqttTransport]:
    """A building's northbound side on the campus broker (what its gateway publishes from)."""
    async with MqttTransport(BrokerConfig(port=port, client_id=f"{b}-north")) as north:
        await north.wait_connected()
        yield north


def alert_doc(
    alert_id: str,
    state: str = "open",
    updated_ms: int = 1_780_000_000_000,
    b: str = "b2",
    message: str = "barrier forced",
) -> bytes:
    """A building's northbound alert message."""
    alert = {
        "id": alert_id,
        "rule": "gate.forced",
        "subject": "gate-in-1",
        "severity": "critical",
        "state": state,
        "opened_ms": 1_780_000_000_000,
        "updated_ms": updated_ms,
        "message": message,
    }
    transition = {"alert_id": alert_id, "action": state, "actor": "rules", "state": state}
    return json.dumps({"building": b, "alert": alert, "transition": transition}).encode()


async def next_event(sse: SseReader, timeout: float = 3.0) -> SseEvent:
    return await sse.next(timeout)


async def test_what_a_building_publishes_arrives_as_events(mosquitto: Mosquitto) -> None:
    app = create_campus_app(campus_config(mosquitto.port))
    async with running(app) as client, building_gateway(mosquitto.port) as north:
        async with client.stream("GET", STREAM_PATH, headers=AUTH) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["cache-control"] == "no-cache"
            sse = SseReader(r)
            await north.publish("campus/b2/north/online", b"true", retain=True)
            ev = await next_event(sse)
            assert (ev.event, ev.data) == ("online", {"building": "b2", "online": True})
            epoch, _, seq = (ev.id or "").partition("-")
            assert epoch == app.state.campus.hub.epoch
            assert seq.isdigit()

            await north.publish("campus/b2/alert/gate.forced", alert_doc("al-1", "open", 10))
            ev = await next_event(sse)
            assert ev.event == "alert"
            assert {k: ev.data[k] for k in ("building", "id", "state", "rule")} == {
                "building": "b2",
                "id": "al-1",
                "state": "open",
                "rule": "gate.forced",
            }
            assert "transitions" not in ev.data
            assert int((ev.id or "").rpartition("-")[2]) == int(seq) + 1

            # A resend and an older state change nothing, so they send nothing; the next
            # event is the acknowledgement.
            await north.publish("campus/b2/alert/gate.forced", alert_doc("al-1", "open", 10))
            await north.publish("campus/b2/alert/gate.forced", alert_doc("al-1", "open", 5))
            await north.publish(
                "campus/b2/alert/gate.forced", alert_doc("al-1", "acknowledged", 20)
            )
            ev = await next_event(sse)
            assert (ev.event, ev.data["id"], ev.data["state"]) == ("alert", "al-1", "acknowledged")

            status = {"online": False, "mode": "normal", "ts_ms": 30}
            await north.publish("campus/b2/north/status/gate-in-1", json.dumps(status).encode())
            await north.publish("campus/b2/north/status/gate-in-1", json.dumps(status).encode())
            await north.publish("campus/b2/north/kpi", b'{"open_alerts": 1}')
            result = {"request_id": "r1", "ok": True}
            await north.publish("campus/b2/north/cmd-result", json.dumps(result).encode())
            got = [await next_event(sse) for _ in range(3)]
            assert [(e.event, e.data) for e in got] == [
                ("status", {"building": "b2", "device": "gate-in-1", "status": status}),
                ("kpi", {"building": "b2", "kpis": {"open_alerts": 1}}),
                ("cmd-result", {"building": "b2", "result": result}),
            ]

            # The building's snapshot no longer lists al-1: resolved meanwhile.
            snapshot = {"building": "b2", "ts_ms": 40, "alerts": []}
            await north.publish("campus/b2/north/alerts", json.dumps(snapshot).encode())
            ev = await next_event(sse)
            assert (ev.event, ev.data["id"], ev.data["state"]) == ("alert", "al-1", "resolved")

            # A building the view had not been told of, then its gateway going offline.
            async with building_gateway(mosquitto.port, "b9") as b9:
                await b9.publish("campus/b9/north/online", b"true")
                await b9.publish("campus/b9/north/online", b"false")
            got = [await next_event(sse) for _ in range(3)]
            assert [(e.event, e.data) for e in got] == [
                ("online", {"building": "b9", "online": True}),
                ("building", {"building": "b9"}),
                ("online", {"building": "b9", "online": False}),
            ]
            assert app.state.campus.hub.clients == 1
        await north.publish("campus/b2/north/online", b"", retain=True)  # clear the retained flag
    assert app.state.campus.hub.clients == 0


async def test_resume_with_last_event_id_and_reset(mosquitto: Mosquitto) -> None:
    app = create_campus_app(campus_config(mosquitto.port), stream_ring=4)
    async with running(app) as client, building_gateway(mosquitto.port) as north:
        async with client.stream("GET", STREAM_PATH, headers=AUTH) as r:
            sse = SseReader(r)
            await north.publish("campus/b2/alert/r", alert_doc("a1", "open", 1))
            first = await next_event(sse)
        assert first.data["id"] == "a1"
        assert first.id is not None
        for n in (2, 3):
            await north.publish("campus/b2/alert/r", alert_doc(f"a{n}", "open", 1))
        resume = {**AUTH, "Last-Event-ID": first.id}
        async with client.stream("GET", STREAM_PATH, headers=resume) as r:
            sse = SseReader(r)
            got = [await next_event(sse) for _ in range(2)]
        assert [(e.event, e.data["id"]) for e in got] == [("alert", "a2"), ("alert", "a3")]

        for n in range(4, 9):  # a1 falls out of the ring of 4
            await north.publish("campus/b2/alert/r", alert_doc(f"a{n}", "open", 1))
        async with client.stream("GET", STREAM_PATH, headers=resume) as r:
            assert (await next_event(SseReader(r))).event == "reset"
        other_run = {**AUTH, "Last-Event-ID": "deadbeef-1"}
        async with client.stream("GET", STREAM_PATH, headers=other_run) as r:
            sse = SseReader(r)
            reset = await next_event(sse)
            assert reset.event == "reset"
            await north.publish("campus/b2/alert/r", alert_doc("a9", "open", 1))
            after = await next_event(sse)
        assert (after.event, after.data["id"]) == ("alert", "a9")
        assert (
            int((after.id or "").rpartition("-")[2]) == int((reset.id or "").rpartition("-")[2]) + 1
        )


async def test_access_keepalive_and_ticket_cookie(mosquitto: Mosquitto) -> None:
    clock = ManualClock()
    app = create_campus_app(
        campus_config(mosquitto.port), clock=clock, keepalive_s=0.2, ticket_ttl_s=3600
    )
    async with running(app) as client:
        assert (await client.get(STREAM_PATH)).status_code == 401
        bad = {"Authorization": "Bearer not-a-token-of-anyone"}
        assert (await client.get(STREAM_PATH, headers=bad)).status_code == 401
        assert (await client.post(f"{STREAM_PATH}/ticket")).status_code == 401

        viewer = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
        async with client.stream("GET", STREAM_PATH, headers=viewer) as r:
            assert r.status_code == 200
            sse = SseReader(r)
            with contextlib.suppress(TimeoutError):
                await sse.next(timeout=0.7)  # idle: no events, only keep-alive comments
            assert sse.comments >= 2

        got = await client.post(f"{STREAM_PATH}/ticket", headers=viewer)
        assert got.status_code == 204
        cookie = got.headers["set-cookie"]
        for attribute in ("HttpOnly", "SameSite=strict", f"Path={STREAM_PATH}", "Max-Age=3600"):
            assert attribute in cookie
        assert "Secure" not in cookie  # plain http here; set when the request came over https
        ticket = got.cookies["campus_stream"]
        assert TOKEN not in ticket
        assert VIEWER_TOKEN not in ticket
        client.cookies.clear()
        with_ticket = {"Cookie": f"campus_stream={ticket}"}
        async with client.stream("GET", STREAM_PATH, headers=with_ticket) as r:
            assert r.status_code == 200
        # The ticket opens the stream only: the rest of the API still wants the token.
        listed = await client.get("/api/campus/v1/alerts", headers=with_ticket)
        assert listed.status_code == 401
        user, expires, mac = ticket.split(".")
        assert user == "desk"
        forged = {"Cookie": f"campus_stream=alice.{expires}.{mac}"}
        assert (await client.get(STREAM_PATH, headers=forged)).status_code == 401
        clock.advance(3601)
        assert (await client.get(STREAM_PATH, headers=with_ticket)).status_code == 401
