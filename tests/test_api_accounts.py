"""Account upkeep over the real API: own password changes, admin resets, disabling users who
left, the last admin, and the audit trail of each."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard_api.auth import Role
from tests.test_api_harness import (
    PASSWORD,
    USERS,
    Api,
    accounts_for,
    api,  # noqa: F401 (fixture)
    running_api,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
OWN = "/api/v1/auth/me/password"
NEW = "a brand new passphrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(api: Api, name: str, password: str = PASSWORD) -> httpx.Response:  # noqa: F811
    r = await api.client.post(LOGIN, json={"name": name, "password": password})
    api.client.cookies.clear()
    return r


async def session(api: Api, name: str, password: str = PASSWORD) -> dict[str, str]:  # noqa: F811
    r = await login(api, name, password)
    assert r.status_code == 200, r.text
    return bearer(r.json()["token"])


async def audit(api: Api, target: str) -> list[dict[str, Any]]:  # noqa: F811
    r = await api.client.get("/api/v1/audit", headers=api.auth(Role.ADMIN))
    assert r.status_code == 200
    assert NEW not in r.text
    return [e for e in r.json() if e["target"] == target or e["actor"] == target]


async def user(api: Api, name: str) -> dict[str, Any]:  # noqa: F811
    r = await api.client.get("/api/v1/users", headers=api.auth(Role.ADMIN))
    found: dict[str, Any] = next(u for u in r.json() if u["name"] == name)
    return found


async def test_own_password_change(api: Api) -> None:  # noqa: F811
    await accounts_for(api.runtime).add_user("alice", Role.OPERATOR, PASSWORD, actor="test")
    this, other = await session(api, "alice"), await session(api, "alice")
    body = {"current_password": "not my password", "new_password": NEW}
    r = await api.client.post(OWN, json=body, headers=this)
    assert r.status_code == 403
    assert r.json()["detail"] == "the current password is wrong"
    short = {"current_password": PASSWORD, "new_password": "short"}
    assert (await api.client.post(OWN, json=short, headers=this)).status_code == 422
    body["current_password"] = PASSWORD
    assert (await api.client.post(OWN, json=body, headers=this)).status_code == 204
    # The session that did it goes on; the user's other sessions end at once.
    assert (await api.client.get(ME, headers=other)).status_code == 401
    api.clock.advance(3)  # past the API's cache of valid sessions: the store answers
    assert (await api.client.get(ME, headers=this)).status_code == 200
    assert (await login(api, "alice")).status_code == 401
    assert (await login(api, "alice", NEW)).status_code == 200
    # Someone else's sessions are untouched.
    assert (await api.client.get(ME, headers=api.auth(Role.OPERATOR))).status_code == 200
    actions = [(e["actor"], e["action"]) for e in await audit(api, "alice")]
    assert ("alice", "user.password.failed") in actions
    assert ("alice", "user.password") in actions


async def test_own_change_with_a_cookie_keeps_that_session(api: Api) -> None:  # noqa: F811
    await accounts_for(api.runtime).add_user("erin", Role.VIEWER, PASSWORD, actor="test")
    other = await session(api, "erin")
    c = api.client
    assert (await c.post(LOGIN, json={"name": "erin", "password": PASSWORD})).status_code == 200
    try:
        body = {"current_password": PASSWORD, "new_password": NEW}
        assert (await c.post(OWN, json=body)).status_code == 204
        api.clock.advance(3)
        assert (await c.get(ME)).json()["name"] == "erin"
    finally:
        c.cookies.clear()
    assert (await c.get(ME, headers=other)).status_code == 401


async def test_api_tokens_have_no_password(api: Api) -> None:  # noqa: F811
    r = await api.client.post(
        "/api/v1/tokens", json={"label": "pw-bi", "role": "admin"}, headers=api.auth(Role.ADMIN)
    )
    body = {"current_password": PASSWORD, "new_password": NEW}
    r = await api.client.post(OWN, json=body, headers=bearer(r.json()["token"]))
    assert r.status_code == 403
    assert "API token" in r.json()["detail"]


async def test_wrong_current_passwords_are_rate_limited(tmp_path: Path) -> None:
    async with running_api(tmp_path, login={"max_failures": 2, "window_s": 60}) as a:
        me = a.auth(Role.VIEWER)
        body = {"current_password": "guess one", "new_password": NEW}
        for _ in range(2):
            assert (await a.client.post(OWN, json=body, headers=me)).status_code == 403
        body["current_password"] = PASSWORD
        r = await a.client.post(OWN, json=body, headers=me)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) == 60
        # The same count guards the login: guessing here is guessing there.
        assert (await login(a, USERS[Role.VIEWER])).status_code == 429
        a.clock.advance(61)
        assert (await a.client.post(OWN, json=body, headers=me)).status_code == 204


async def test_admin_sets_a_password(api: Api) -> None:  # noqa: F811
    await accounts_for(api.runtime).add_user("carol", Role.COUNSELLOR, PASSWORD, actor="test")
    one, two = await session(api, "carol"), await session(api, "carol")
    admin = api.auth(Role.ADMIN)
    r = await api.client.post("/api/v1/users/carol/password", json={"password": NEW}, headers=admin)
    assert r.status_code == 200
    assert r.json() == {"name": "carol", "password": None}
    for s in (one, two):
        assert (await api.client.get(ME, headers=s)).status_code == 401
    assert (await login(api, "carol")).status_code == 401
    assert (await login(api, "carol", NEW)).status_code == 200
    # Without a password one is generated and shown once.
    r = await api.client.post("/api/v1/users/carol/password", json={}, headers=admin)
    generated = r.json()["password"]
    assert len(generated) >= 12
    assert (await login(api, "carol", generated)).status_code == 200
    assert (await api.client.get(ME, headers=admin)).status_code == 200
    trail = [(e["actor"], e["action"], e["target"]) for e in await audit(api, "carol")]
    assert trail.count(("admin1", "user.password", "carol")) == 2
    assert generated not in str(await audit(api, "carol"))


async def test_admin_password_errors(api: Api) -> None:  # noqa: F811
    admin = api.auth(Role.ADMIN)
    post = api.client.post
    r = await post("/api/v1/users/ghost/password", json={"password": NEW}, headers=admin)
    assert r.status_code == 404
    assert "ghost" in r.json()["detail"]
    r = await post("/api/v1/users/admin1/password", json={"password": NEW}, headers=admin)
    assert r.status_code == 400
    assert "/api/v1/auth/me/password" in r.json()["detail"]
    r = await post("/api/v1/users/viewer1/password", json={"password": "short"}, headers=admin)
    assert r.status_code == 422
    assert (await post("/api/v1/users/bad!name/disable", headers=admin)).status_code == 422
    assert (await post("/api/v1/users/ghost/disable", headers=admin)).status_code == 404
    assert (await post("/api/v1/users/ghost/enable", headers=admin)).status_code == 404


async def test_disable_and_enable(api: Api) -> None:  # noqa: F811
    await accounts_for(api.runtime).add_user("dave", Role.OPERATOR, PASSWORD, actor="test")
    s = await session(api, "dave")
    assert (await api.client.get(ME, headers=s)).status_code == 200  # now in the cache
    assert (await user(api, "dave"))["disabled"] is False
    admin = api.auth(Role.ADMIN)
    r = await api.client.post("/api/v1/users/dave/disable", headers=admin)
    assert r.status_code == 200
    assert r.json()["disabled"] is True
    assert (await api.client.get(ME, headers=s)).status_code == 401
    refused, wrong = await login(api, "dave"), await login(api, "dave", "wrong password")
    assert refused.status_code == wrong.status_code == 401
    assert refused.json() == wrong.json() == {"detail": "wrong user name or password"}
    assert (await user(api, "dave"))["disabled"] is True
    r = await api.client.post("/api/v1/users/dave/enable", headers=admin)
    assert r.status_code == 200
    assert r.json()["disabled"] is False
    # Enabling lets them log in again; the sessions that ended stay ended.
    assert (await api.client.get(ME, headers=s)).status_code == 401
    assert (await api.client.get(ME, headers=await session(api, "dave"))).status_code == 200
    trail = [(e["actor"], e["action"]) for e in await audit(api, "dave")]
    assert ("admin1", "user.disable") in trail
    assert ("admin1", "user.enable") in trail
    assert trail.count(("dave", "login.failed")) == 2


async def test_non_admins_cannot_upkeep_others(api: Api) -> None:  # noqa: F811
    await accounts_for(api.runtime).add_user("frank", Role.VIEWER, PASSWORD, actor="test")
    for role in (Role.VIEWER, Role.OPERATOR, Role.COUNSELLOR):
        h = api.auth(role)
        for path, body in (
            ("/api/v1/users/frank/password", {"password": NEW}),
            ("/api/v1/users/frank/disable", None),
            ("/api/v1/users/frank/enable", None),
        ):
            assert (await api.client.post(path, json=body, headers=h)).status_code == 403
        assert (await api.client.get("/api/v1/users", headers=h)).status_code == 403
    assert (await user(api, "frank"))["disabled"] is False
    assert (await login(api, "frank")).status_code == 200
    assert {e["action"] for e in await audit(api, "frank")} == {"user.add", "login"}


async def test_the_last_admin_stays_enabled(tmp_path: Path) -> None:
    async with running_api(tmp_path) as a:
        admin, post = a.auth(Role.ADMIN), a.client.post
        r = await post("/api/v1/users/admin1/disable", headers=admin)
        assert r.status_code == 409
        assert "last enabled admin" in r.json()["detail"]
        await accounts_for(a.runtime).add_user("boss", Role.ADMIN, PASSWORD, actor="test")
        assert (await post("/api/v1/users/boss/disable", headers=admin)).status_code == 200
        assert (await post("/api/v1/users/admin1/disable", headers=admin)).status_code == 409
        assert (await post("/api/v1/users/boss/enable", headers=admin)).status_code == 200
        # With another admin enabled, an admin may disable even themselves.
        assert (await post("/api/v1/users/admin1/disable", headers=admin)).status_code == 200
        assert (await a.client.get(ME, headers=admin)).status_code == 401
        boss = await session(a, "boss")
        r = await post("/api/v1/users/boss/disable", headers=boss)
        assert r.status_code == 409
        # Other roles are no admins: disabling every one of them is fine.
        for role in (Role.VIEWER, Role.OPERATOR, Role.COUNSELLOR):
            r = await post(f"/api/v1/users/{USERS[role]}/disable", headers=boss)
            assert r.status_code == 200
        # Two admins disabled at the same moment: one of them stays.
        await accounts_for(a.runtime).add_user("boss2", Role.ADMIN, PASSWORD, actor="test")
        r = await post("/api/v1/tokens", json={"label": "ops", "role": "admin"}, headers=boss)
        token = bearer(r.json()["token"])
        both = await asyncio.gather(
            post("/api/v1/users/boss/disable", headers=token),
            post("/api/v1/users/boss2/disable", headers=token),
        )
        assert sorted(r.status_code for r in both) == [200, 409]
        listed = (await a.client.get("/api/v1/users", headers=token)).json()
        assert [u["name"] for u in listed if u["role"] == "admin" and not u["disabled"]] in (
            ["boss"],
            ["boss2"],
        )
