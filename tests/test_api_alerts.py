"""Alerts through HTTP: filters, detail with history, actions, snapshots, names and the audit."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard_api.auth import Role
from dashboard_api.residents import Resident
from gateway.model import AlertState, Severity
from gateway.storage.batch import WriteBatch
from tests.test_api_harness import (
    JPEG,
    START_MS,
    Api,
    FixedResidents,
    alert,
    api,  # noqa: F401 (fixture)
    keep_snapshot,
    running_api,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
PSEUDO = "p:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


async def _ids(api: Api, **params: object) -> list[str]:  # noqa: F811
    r = await api.client.get("/api/v1/alerts", params=params, headers=api.auth(Role.VIEWER))
    assert r.status_code == 200, r.text
    return [a["id"] for a in r.json()["alerts"]]


async def test_list_filters(api: Api) -> None:  # noqa: F811
    hour = 3_600_000
    await api.add_alert(alert(1, opened_ms=START_MS - 3 * hour))  # warning, overdue to ack
    await api.add_alert(
        alert(
            2,
            rule="safety.smoke",
            subject="safety-3",
            severity=Severity.CRITICAL,
            opened_ms=START_MS - 60_000,
        )
    )
    await api.add_alert(
        alert(
            3,
            rule="power.overload",
            subject="meter-502",
            opened_ms=START_MS - 2 * hour,
            state=AlertState.RESOLVED,
        )
    )
    await api.add_alert(
        alert(
            4,
            rule="resident.late_return",
            subject=PSEUDO,
            severity=Severity.INFO,
            opened_ms=START_MS - 30_000,
        )
    )
    assert await _ids(api) == ["a4", "a2", "a3", "a1"]
    assert await _ids(api, state="resolved") == ["a3"]
    assert set(await _ids(api, state=["open", "acknowledged"])) == {"a1", "a2", "a4"}
    assert await _ids(api, rule="safety.smoke") == ["a2"]
    assert await _ids(api, severity="info") == ["a4"]
    assert await _ids(api, floor=3) == ["a2"]
    assert await _ids(api, floor=5) == ["a3"]
    assert await _ids(api, since=START_MS - 90_000) == ["a4", "a2"]
    assert await _ids(api, until=START_MS - hour) == ["a3", "a1"]
    assert await _ids(api, overdue=True) == ["a1"]
    assert await _ids(api, limit=1) == ["a4"]
    r = await api.client.get(
        "/api/v1/alerts", params={"state": "bogus"}, headers=api.auth(Role.VIEWER)
    )
    assert r.status_code == 422


async def test_floor_filter_reads_page_by_page(tmp_path: Path) -> None:
    """Floor 4's few alerts lie behind thousands of others: every one is found, newest first,
    and `limit` holds, however many pages of other floors are read on the way."""
    async with running_api(tmp_path) as a:
        others = [
            alert(n, subject=f"meter-{1 + n % 3}01", opened_ms=START_MS - n * 1000)
            for n in range(2500)
        ]
        ties = START_MS - 2_600_000  # same opening time: the order is by id
        floor4 = [alert(9000 + n, subject="safety-4", opened_ms=ties) for n in range(3)]
        floor4.append(alert(9100, subject="gate-in-1", data={"floor": 4}, opened_ms=ties - 1))
        await a.runtime.store.commit(WriteBatch(alerts=others + floor4))
        assert await _ids(a, floor=4) == ["a9000", "a9001", "a9002", "a9100"]
        assert await _ids(a, floor=4, limit=2) == ["a9000", "a9001"]
        on_floor_2 = [f"a{n}" for n in range(2500) if n % 3 == 1]  # meter-201
        assert await _ids(a, floor=2, limit=1500) == on_floor_2


async def test_actions_and_history(api: Api) -> None:  # noqa: F811
    await api.add_alert(alert(10, opened_ms=START_MS - 1000))
    op = api.auth(Role.OPERATOR)
    base = "/api/v1/alerts/a10"
    api.clock.advance(30)
    r = await api.client.post(f"{base}/acknowledge", json={"note": "seen"}, headers=op)
    assert r.status_code == 200
    assert r.json()["state"] == "acknowledged"
    assert (await api.client.post(f"{base}/acknowledge", json={}, headers=op)).status_code == 409
    r = await api.client.post(f"{base}/assign", json={"assignee": "counsellor1"}, headers=op)
    assert r.json()["assignee"] == "counsellor1"
    assert (
        await api.client.post(f"{base}/comment", json={"note": "called"}, headers=op)
    ).status_code == 200
    assert (await api.client.post(f"{base}/resolve", json={}, headers=op)).status_code == 422
    assert (
        await api.client.post(f"{base}/resolve", json={"note": ""}, headers=op)
    ).status_code == 422
    r = await api.client.post(f"{base}/resolve", json={"note": "door fixed"}, headers=op)
    assert r.json()["state"] == "resolved"
    assert (await api.client.post(f"{base}/acknowledge", json={}, headers=op)).status_code == 409
    assert (
        await api.client.post("/api/v1/alerts/nope/acknowledge", json={}, headers=op)
    ).status_code == 404

    detail = (await api.client.get(base, headers=op)).json()
    actions = [(t["action"], t["actor"], t["note"]) for t in detail["transitions"]]
    assert actions == [
        ("open", "system", ""),
        ("acknowledge", "operator1", "seen"),
        ("assign", "operator1", ""),
        ("comment", "operator1", "called"),
        ("resolve", "operator1", "door fixed"),
    ]
    audit = (await api.client.get("/api/v1/audit", headers=api.auth(Role.ADMIN))).json()
    mine = [(e["action"], e["actor"]) for e in audit if e["target"] == "a10"]
    assert mine == [
        ("alert.acknowledge", "operator1"),
        ("alert.assign", "operator1"),
        ("alert.comment", "operator1"),
        ("alert.resolve", "operator1"),
    ]
    assert (await api.client.get("/api/v1/alerts/missing", headers=op)).status_code == 404


async def test_names_for_counsellors_only_and_audited(api: Api) -> None:  # noqa: F811
    api.residents.residents.append(Resident(PSEUDO, "301", "王五", True))
    await api.add_alert(
        alert(
            20,
            rule="resident.not_returned",
            subject=PSEUDO,
            receivers=("counsellor",),
            data={"name": "王五", "room": "301"},
        )
    )
    seen = {}
    for role in Role:
        body = (await api.client.get("/api/v1/alerts/a20", headers=api.auth(role))).json()["alert"]
        seen[role] = (body["resident_name"], "name" in body["data"], body["subject"])
    assert seen[Role.VIEWER] == (None, False, "resident")
    assert seen[Role.OPERATOR] == (None, False, PSEUDO)
    assert seen[Role.COUNSELLOR] == ("王五", True, PSEUDO)
    assert seen[Role.ADMIN] == ("王五", True, PSEUDO)
    audit = (await api.client.get("/api/v1/audit", headers=api.auth(Role.ADMIN))).json()
    reads = {
        e["actor"] for e in audit if e["action"] == "alert.read_personal" and e["target"] == "a20"
    }
    assert reads == {"counsellor1", "admin1"}
    r = await api.client.get("/api/v1/alerts", headers=api.auth(Role.COUNSELLOR))
    assert "王五" not in r.text  # the list never carries names


async def test_snapshot(api: Api) -> None:  # noqa: F811
    await keep_snapshot(api, "cam-1", "cam-1:camera.tamper:1", START_MS - 61_000)
    await keep_snapshot(api, "cam-2", "cam-2:camera.tamper:1", START_MS - 3_600_000)
    await api.add_alert(
        alert(30, rule="camera.tamper", subject="cam-1", data={"vars": {"device": "cam-1"}})
    )
    await api.add_alert(alert(31, rule="gate.tailgate", subject="gate-in-1"))
    # cam-2's only snapshot is from an hour before the alert: not this alert's
    await api.add_alert(alert(32, rule="camera.tamper", subject="cam-2"))
    v = api.auth(Role.VIEWER)
    body = (await api.client.get("/api/v1/alerts/a30", headers=v)).json()["alert"]
    assert body["snapshot_url"] == "/api/v1/alerts/a30/snapshot"
    r = await api.client.get(body["snapshot_url"], headers=v)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content == JPEG
    gate = (await api.client.get("/api/v1/alerts/a31", headers=v)).json()["alert"]
    assert gate["snapshot_url"] is None
    assert (await api.client.get("/api/v1/alerts/a31/snapshot", headers=v)).status_code == 404
    assert (await api.client.get("/api/v1/alerts/a32/snapshot", headers=v)).status_code == 404


async def test_actions_without_rule_engine_are_503(tmp_path: Path) -> None:
    async with running_api(tmp_path, service=False, residents=FixedResidents()) as a:
        await a.add_alert(alert(1))
        r = await a.client.post(
            "/api/v1/alerts/a1/acknowledge", json={}, headers=a.auth(Role.OPERATOR)
        )
        assert r.status_code == 503
        assert "rule engine" in r.json()["detail"]
