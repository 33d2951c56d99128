"""The role × route matrix, generated from the app's routers: every route answers 401 without a
login, 403 to roles that may not use it, and works for those that may."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fastapi.routing import APIRoute

from dashboard_api.auth import Role
from dashboard_api.routes import admin, alerts, auth, data, stream, system
from gateway.model import AlertState, Severity
from tests.test_api_harness import (  # noqa: F401 (api: fixture)
    PASSWORD,
    START_MS,
    USERS,
    Api,
    accounts_for,
    alert,
    api,
    keep_snapshot,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALL = frozenset(Role)
HANDLERS = frozenset({Role.OPERATOR, Role.COUNSELLOR, Role.ADMIN})
NAMES = frozenset({Role.COUNSELLOR, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})
PUBLIC = None

# (method, path) -> who may use it (None: no login needed), and the success status expected.
EXPECTED: dict[tuple[str, str], tuple[frozenset[Role] | None, int]] = {
    ("POST", "/api/v1/auth/login"): (PUBLIC, 200),
    ("POST", "/api/v1/auth/logout"): (ALL, 204),
    ("GET", "/api/v1/auth/me"): (ALL, 200),
    ("POST", "/api/v1/auth/me/password"): (ALL, 204),
    ("GET", "/api/v1/users"): (ADMIN, 200),
    ("POST", "/api/v1/users/{name}/password"): (ADMIN, 200),
    ("POST", "/api/v1/users/{name}/disable"): (ADMIN, 200),
    ("POST", "/api/v1/users/{name}/enable"): (ADMIN, 200),
    ("GET", "/api/v1/tokens"): (ADMIN, 200),
    ("POST", "/api/v1/tokens"): (ADMIN, 201),
    ("DELETE", "/api/v1/tokens/{token_id}"): (ADMIN, 204),
    ("GET", "/api/v1/alerts"): (ALL, 200),
    ("GET", "/api/v1/alerts/{alert_id}"): (ALL, 200),
    ("GET", "/api/v1/alerts/{alert_id}/snapshot"): (ALL, 200),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): (HANDLERS, 200),
    ("POST", "/api/v1/alerts/{alert_id}/assign"): (HANDLERS, 200),
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): (HANDLERS, 200),
    ("POST", "/api/v1/alerts/{alert_id}/comment"): (HANDLERS, 200),
    ("GET", "/api/v1/devices"): (ALL, 200),
    ("GET", "/api/v1/devices/{device_id}"): (ALL, 200),
    ("GET", "/api/v1/events"): (ALL, 200),
    ("GET", "/api/v1/series"): (ALL, 200),
    ("GET", "/api/v1/kpis"): (ALL, 200),
    ("GET", "/api/v1/charts/day"): (ALL, 200),
    ("GET", "/api/v1/residents"): (NAMES, 200),
    ("GET", "/api/v1/audit"): (ADMIN, 200),
    ("GET", "/api/v1/dead-letters"): (ADMIN, 200),
    ("GET", "/api/v1/stream"): (ALL, 200),
    ("GET", "/healthz"): (PUBLIC, 200),
    ("GET", "/readyz"): (PUBLIC, 200),
    ("GET", "/metrics"): (PUBLIC, 200),
}


def routes() -> list[tuple[str, str]]:
    found = []
    for module in (auth, alerts, data, admin, stream, system):
        for r in module.router.routes:
            assert isinstance(r, APIRoute)
            found.extend((m, r.path) for m in sorted(r.methods))
    return found


ROUTES = routes()
CALLERS: list[Role | None] = [None, *Role]


async def test_every_route_is_in_the_matrix() -> None:
    assert set(ROUTES) == set(EXPECTED), "a route was added or removed: update EXPECTED"


_counter = itertools.count(1000)


async def _request(api: Api, method: str, path: str, caller: Role | None) -> int:  # noqa: F811
    headers = {} if caller is None else api.auth(caller)
    n = next(_counter)
    kwargs: dict[str, Any] = {}
    if "{alert_id}" in path:
        await keep_snapshot(api, "cam-1", f"cam-1:m{n}", START_MS - 60_000)
        await api.add_alert(alert(n, subject="cam-1", severity=Severity.CRITICAL), publish=False)
        path = path.replace("{alert_id}", f"a{n}")
    if "{device_id}" in path:
        path = path.replace("{device_id}", "gate-in-1")
    if "{name}" in path:
        # A user of its own for each request: the matrix disables them and changes passwords.
        await accounts_for(api.runtime).add_user(f"m{n}", Role.VIEWER, PASSWORD, actor="test")
        path = path.replace("{name}", f"m{n}")
        if path.endswith("/password"):
            kwargs["json"] = {"password": "another long password"}
    if path == "/api/v1/auth/me/password" and caller is not None:
        # A session of a user of its own, so that the callers' shared sessions stay.
        await accounts_for(api.runtime).add_user(f"pw{n}", caller, PASSWORD, actor="test")
        r = await api.client.post(
            "/api/v1/auth/login", json={"name": f"pw{n}", "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        api.client.cookies.clear()
    if "{token_id}" in path:
        r = await api.client.post(
            "/api/v1/tokens", json={"label": f"t{n}"}, headers=api.auth(Role.ADMIN)
        )
        path = path.replace("{token_id}", r.json()["id"])
    bodies: dict[str, dict[str, Any]] = {
        "/api/v1/auth/login": {"name": USERS[Role.VIEWER], "password": "correct horse battery"},
        "/api/v1/tokens": {"label": f"label{n}", "role": "viewer"},
        "/api/v1/auth/me/password": {
            "current_password": PASSWORD,
            "new_password": "another long password",
        },
        "acknowledge": {},
        "assign": {"assignee": "operator1"},
        "resolve": {"note": "handled"},
        "comment": {"note": "seen"},
    }
    for key, body in bodies.items():
        if path.endswith(key) and method == "POST":
            kwargs["json"] = body
    if path == "/api/v1/series":
        kwargs["params"] = {
            "device": "meter-101",
            "metric": "power",
            "since": START_MS - 3_600_000,
            "until": START_MS,
        }
    if path == "/api/v1/auth/logout" and caller is not None:
        r = await api.client.post(
            "/api/v1/auth/login", json={"name": USERS[caller], "password": "correct horse battery"}
        )
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        api.client.cookies.clear()
    if path == "/api/v1/stream":
        async with api.client.stream(method, path, headers=headers) as resp:
            return resp.status_code
    resp = await api.client.request(method, path, headers=headers, **kwargs)
    api.client.cookies.clear()
    assert resp.status_code < 500, resp.text
    return resp.status_code


@pytest.mark.parametrize(
    ("method", "path", "caller"),
    [(m, p, c) for (m, p) in ROUTES for c in CALLERS],
    ids=[f"{m} {p} {c or 'anonymous'}" for (m, p) in ROUTES for c in CALLERS],
)
async def test_role_route(api: Api, method: str, path: str, caller: Role | None) -> None:  # noqa: F811
    allowed, ok = EXPECTED[(method, path)]
    status = await _request(api, method, path, caller)
    if allowed is None:
        assert status == ok
    elif caller is None:
        assert status == 401
    elif caller in allowed:
        assert status == ok
    else:
        assert status == 403


async def test_viewer_sees_no_personal_data(api: Api) -> None:  # noqa: F811
    a = alert(
        9001,
        rule="resident.not_returned",
        subject="p:0123456789abcdef0123456789abcdef",
        data={"room": "301", "name": "张三", "card": "p:0123"},
        receivers=("counsellor",),
        state=AlertState.OPEN,
    )
    await api.add_alert(a, publish=False)
    r = await api.client.get("/api/v1/alerts/a9001", headers=api.auth(Role.VIEWER))
    body = r.json()["alert"]
    assert body["subject"] == "resident"
    assert "name" not in body["data"]
    assert "card" not in body["data"]
    assert body["resident_name"] is None
    assert "张三" not in r.text
    assert "p:0123" not in r.text
