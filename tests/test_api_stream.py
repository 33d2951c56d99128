"""The live stream over a real server: alerts, status and KPI events, resuming, resets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from dashboard_api.auth import Role
from gateway.bus import Stream
from gateway.model import AlertState, DeviceStatus
from tests.test_api_harness import START_MS, Api, SseReader, alert, running_api

pytestmark = pytest.mark.asyncio(loop_scope="module")
RING = 20


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    path: Path = tmp_path_factory.mktemp("stream")
    async with running_api(path, stream_ring=RING, stream_keepalive_s=0.3) as a:
        yield a


async def test_alert_arrives_and_acknowledge_shows(api: Api) -> None:
    async with api.client.stream("GET", "/api/v1/stream", headers=api.auth(Role.OPERATOR)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        sse = SseReader(r)
        a = alert(1, opened_ms=START_MS)
        await api.add_alert(a)
        ev = await sse.until("alert", timeout=2)
        assert ev.data["id"] == "a1"
        assert ev.data["state"] == "open"
        assert ev.data["rule"] == "gate.tailgate"
        ack = await api.client.post(
            "/api/v1/alerts/a1/acknowledge",
            json={"note": "on my way"},
            headers=api.auth(Role.OPERATOR),
        )
        assert ack.status_code == 200
        ev = await sse.until("alert", timeout=2)
        assert (ev.data["id"], ev.data["state"]) == ("a1", AlertState.ACKNOWLEDGED.value)


async def test_status_and_kpi_events(api: Api) -> None:
    async with api.client.stream("GET", "/api/v1/stream", headers=api.auth(Role.VIEWER)) as r:
        sse = SseReader(r)
        await api.runtime.bus.publish(
            Stream.STATUS, DeviceStatus("gate-in-1", START_MS, False, "normal")
        )
        ev = await sse.until("status")
        assert ev.data["device"] == "gate-in-1"
        assert ev.data["online"] is False
        await api.runtime.bus.publish(Stream.KPI, {"open_alerts": 7})
        ev = await sse.until("kpi")
        assert ev.data == {"open_alerts": 7}


async def test_resume_with_last_event_id(api: Api) -> None:
    headers = api.auth(Role.OPERATOR)
    async with api.client.stream("GET", "/api/v1/stream", headers=headers) as r:
        sse = SseReader(r)
        await api.add_alert(alert(10, opened_ms=START_MS))
        first = await sse.until("alert")
    assert first.id is not None
    for n in (11, 12):
        await api.add_alert(alert(n, opened_ms=START_MS))
    headers = {**headers, "Last-Event-ID": first.id}
    async with api.client.stream("GET", "/api/v1/stream", headers=headers) as r:
        sse = SseReader(r)
        got = [(await sse.until("alert")).data["id"] for _ in range(2)]
    assert got == ["a11", "a12"]


async def test_unknown_or_evicted_position_resets(api: Api) -> None:
    headers = {**api.auth(Role.VIEWER), "Last-Event-ID": "deadbeef-3"}
    async with api.client.stream("GET", "/api/v1/stream", headers=headers) as r:
        ev = await SseReader(r).next()
        assert ev.event == "reset"
    async with api.client.stream("GET", "/api/v1/stream", headers=api.auth(Role.VIEWER)) as r:
        sse = SseReader(r)
        await api.add_alert(alert(20, opened_ms=START_MS))
        old = await sse.until("alert")
    for n in range(21, 21 + RING + 2):
        await api.add_alert(alert(n, opened_ms=START_MS))
    async with api.client.stream(
        "GET", "/api/v1/stream", headers={**api.auth(Role.VIEWER), "Last-Event-ID": old.id or ""}
    ) as r:
        sse = SseReader(r)
        assert (await sse.next()).event == "reset"


async def test_keepalive_and_viewer_masking(api: Api) -> None:
    async with api.client.stream("GET", "/api/v1/stream", headers=api.auth(Role.VIEWER)) as r:
        sse = SseReader(r)
        resident = alert(
            50,
            rule="resident.late_return",
            subject="p:00112233445566778899aabbccddeeff",
            data={"name": "李四", "room": "502"},
            opened_ms=START_MS,
        )
        await api.add_alert(resident)
        ev = await sse.until("alert")
        assert ev.data["subject"] == "resident"
        assert "name" not in ev.data["data"]
        # An idle stream carries keep-alive comments (every 0.3 s here) and no events.
        before = sse.comments
        with pytest.raises(TimeoutError):
            await sse.next(timeout=1.0)
        assert sse.comments >= before + 2


async def test_stream_needs_login(api: Api) -> None:
    r = await api.client.get("/api/v1/stream")
    assert r.status_code == 401
