"""Devices, events, series, KPIs, charts, residents, dead letters and the system endpoints."""

from __future__ import annotations

import pytest

from dashboard_api.auth import Role
from dashboard_api.residents import Resident
from gateway.model import AlertState, DeadLetter, DeviceStatus, Event, Reading, Severity
from gateway.runtime import HealthState
from gateway.storage.batch import WriteBatch
from tests.test_api_harness import (
    START_MS,
    Api,
    alert,
    api,  # noqa: F401 (fixture)
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
HOUR = 3_600_000
PSEUDO = "p:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
T0 = START_MS // HOUR * HOUR - 2 * HOUR  # readings every 10 s from T0 up to now


async def _seed(api: Api) -> None:  # noqa: F811
    readings = [
        Reading(f"meter-{room}", "power", T0 + i * 10_000, float(w))
        for room, w in (("101", 100), ("102", 300))
        for i in range((START_MS - T0) // 10_000)
    ]
    events = [
        Event(
            f"gate-in-1:{i}",
            "gate-in-1",
            "gate.pass",
            START_MS - i * 600_000,
            START_MS,
            {"direction": "in", "card": PSEUDO},
        )
        for i in range(12)
    ] + [
        Event("term-1:1", "term-1", "terminal.txn", START_MS - 60_000, START_MS, {"result": "ok"}),
        Event(
            "term-1:2", "term-1", "terminal.txn", START_MS - 50_000, START_MS, {"result": "failed"}
        ),
    ]
    statuses = [
        DeviceStatus("gate-in-1", START_MS - 120_000, True, "normal"),
        DeviceStatus("gate-in-1", START_MS - 60_000, True, "free"),
        DeviceStatus("term-1", START_MS - 60_000, True, "ok"),
        DeviceStatus("term-2", START_MS - 60_000, True, "fault"),
        DeviceStatus("cam-1", START_MS - 60_000, False),
    ]
    letters = [
        DeadLetter(
            START_MS, "mqtt", "gate-in-2", "campus/b07/gate/gate-in-2/event", b"{bad", "not JSON"
        )
    ]
    await api.runtime.store.commit(
        WriteBatch(readings=readings, events=events, statuses=statuses, dead_letters=letters)
    )


async def test_devices_and_history(api: Api) -> None:  # noqa: F811
    await _seed(api)
    v = api.auth(Role.VIEWER)
    devices = (await api.client.get("/api/v1/devices", headers=v)).json()
    by_id = {d["id"]: d for d in devices}
    assert len(devices) == len(api.runtime.catalog)
    assert by_id["gate-in-1"]["status"]["mode"] == "free"
    assert by_id["cam-1"]["status"]["online"] is False
    assert by_id["meter-101"]["status"] is None
    assert by_id["gate-in-2"]["dead_letters"] == 1
    floor3 = (await api.client.get("/api/v1/devices", params={"floor": 3}, headers=v)).json()
    assert {d["floor"] for d in floor3} == {3}
    gates = (await api.client.get("/api/v1/devices", params={"kind": "gate"}, headers=v)).json()
    assert len(gates) == 4
    detail = (await api.client.get("/api/v1/devices/gate-in-1", headers=v)).json()
    assert [s["mode"] for s in detail["history"]] == ["normal", "free"]
    assert (await api.client.get("/api/v1/devices/nope", headers=v)).status_code == 404


async def test_events_filters_paging_and_privacy(api: Api) -> None:  # noqa: F811
    v = api.auth(Role.VIEWER)
    r = (
        await api.client.get("/api/v1/events", params={"kind": "gate.", "limit": 5}, headers=v)
    ).json()
    assert len(r["events"]) == 5
    assert r["next_after"] == r["events"][-1]["rowid"]
    assert "card" not in r["events"][0]["data"]
    rest = (
        await api.client.get(
            "/api/v1/events", params={"kind": "gate.", "after": r["next_after"]}, headers=v
        )
    ).json()
    assert len(rest["events"]) == 7
    assert rest["next_after"] is None
    t = (await api.client.get("/api/v1/events", params={"device": "term-1"}, headers=v)).json()
    assert [e["kind"] for e in t["events"]] == ["terminal.txn", "terminal.txn"]
    since = (
        await api.client.get(
            "/api/v1/events", params={"since": START_MS - 1_300_000, "kind": "gate."}, headers=v
        )
    ).json()
    assert len(since["events"]) == 3
    admin = (
        await api.client.get(
            "/api/v1/events", params={"kind": "gate.", "limit": 1}, headers=api.auth(Role.ADMIN)
        )
    ).json()
    assert admin["events"][0]["data"]["card"] == PSEUDO


async def test_series_buckets(api: Api) -> None:  # noqa: F811
    v = api.auth(Role.VIEWER)
    q = {
        "device": "meter-101",
        "metric": "power",
        "since": T0,
        "until": T0 + 2 * HOUR,
    }
    raw = (await api.client.get("/api/v1/series", params=q, headers=v)).json()
    assert len(raw["points"]) == 720
    m = (await api.client.get("/api/v1/series", params={**q, "bucket": "1m"}, headers=v)).json()
    assert len(m["points"]) == 120
    assert m["points"][0]["count"] == 6
    h = (await api.client.get("/api/v1/series", params={**q, "bucket": "1h"}, headers=v)).json()
    assert [p["mean"] for p in h["points"]] == [100.0, 100.0]
    bad = await api.client.get("/api/v1/series", params={**q, "until": q["since"]}, headers=v)
    assert bad.status_code == 422
    far = await api.client.get("/api/v1/series", params={**q, "since": 0}, headers=v)
    assert far.status_code == 422
    assert (
        await api.client.get("/api/v1/series", params={**q, "bucket": "5m"}, headers=v)
    ).status_code == 422


async def test_kpis_and_charts(api: Api) -> None:  # noqa: F811
    clock = api.clock
    day = START_MS - 3600_000
    a1 = alert(100, rule="safety.smoke", severity=Severity.CRITICAL, opened_ms=day)
    a2 = alert(101, opened_ms=day + 1000)
    a3 = alert(102, opened_ms=day + 2000, rule="power.overload", subject="meter-101")
    for a in (a1, a2, a3):
        await api.add_alert(a, publish=False)
    op = api.auth(Role.OPERATOR)
    await api.client.post("/api/v1/alerts/a100/acknowledge", json={}, headers=op)  # 3600 s after
    await api.client.post("/api/v1/alerts/a100/resolve", json={"note": "x"}, headers=op)  # late
    clock.advance(60)
    await api.client.post("/api/v1/alerts/a101/acknowledge", json={}, headers=op)
    await api.client.post("/api/v1/alerts/a101/resolve", json={"note": "x"}, headers=op)
    api.residents.residents[:] = [
        Resident(PSEUDO, "301", "赵六", True),
        Resident("p:cccccccccccccccccccccccccccccccc", "301", "孙七", False),
    ]
    clock.advance(3)  # KPIs are cached for 2 s
    k = (await api.client.get("/api/v1/kpis", headers=api.auth(Role.VIEWER))).json()
    assert k["alerts_today_by_rule"] == {"gate.tailgate": 1, "power.overload": 1, "safety.smoke": 1}
    assert k["open_alerts"] == 1
    assert k["overdue_alerts"] == 1  # a102: warning, 10 min to acknowledge, opened an hour ago
    assert k["median_ack_s"] == pytest.approx((3600 + 3659) / 2)
    assert k["resolved_within_deadline_share"] == 0.5
    assert k["devices_online"]["gate"] == {"online": 1, "total": 4}
    assert k["devices_online"]["camera"] == {"online": 0, "total": 4}
    assert (k["terminals_available"], k["terminals_total"]) == (1, 2)
    assert (k["terminal_txns_today"], k["terminal_txns_failed_today"]) == (2, 1)
    assert k["power_now_w"] == 400.0
    assert k["energy_today_kwh"] > 0
    assert (k["residents_in"], k["residents_total"], k["residents_in_share"]) == (1, 2, 0.5)
    assert k["pending"] == []
    charts = (await api.client.get("/api/v1/charts/day", headers=api.auth(Role.VIEWER))).json()
    assert len(charts["hours_ms"]) == 24
    assert sum(charts["passages"]) == 12
    assert sum(charts["alerts"]) >= 3
    assert charts["power_w"][-2] == pytest.approx(400.0)
    assert AlertState.RESOLVED.value == "resolved"


async def test_residents_are_audited(api: Api) -> None:  # noqa: F811
    r = await api.client.get(
        "/api/v1/residents", params={"room": "301"}, headers=api.auth(Role.COUNSELLOR)
    )
    body = r.json()
    assert body["available"] is True
    assert {x["name"] for x in body["residents"]} == {"赵六", "孙七"}
    audit = (await api.client.get("/api/v1/audit", headers=api.auth(Role.ADMIN))).json()
    assert any(e["action"] == "residents.read" and e["actor"] == "counsellor1" for e in audit)


async def test_dead_letters(api: Api) -> None:  # noqa: F811
    r = (await api.client.get("/api/v1/dead-letters", headers=api.auth(Role.ADMIN))).json()
    assert r["counts"] == {"gate-in-2": 1}
    assert r["recent"][0]["payload"] == "{bad"


async def test_health_ready_metrics(api: Api) -> None:  # noqa: F811
    h = (await api.client.get("/healthz")).json()
    assert h["components"]["api"] == "running"
    assert (await api.client.get("/readyz")).status_code == 200
    api.runtime.health.set("mqtt", HealthState.PARKED, "broken config")
    r = await api.client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["components"]["mqtt"] == "parked"
    api.runtime.health.set("mqtt", HealthState.RUNNING)
    text = (await api.client.get("/metrics")).text
    assert 'campus_edge_device_online{device="cam-1"} 0' in text
    assert 'campus_edge_dead_letters{device="gate-in-2"} 1' in text
    assert "campus_edge_api_requests_total" in text
    assert "campus_edge_api_stream_clients" in text
