"""Logins, sessions, API tokens, rate limiting and the first admin made by the CLI."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

import pytest

from dashboard_api.auth import MIN_PASSWORD, PASSWORD_ALPHABET, Role, generate_password
from gateway.cli import main as cli_main
from gateway.storage.batch import WriteBatch
from tests.test_api_harness import (
    PASSWORD,
    USERS,
    Api,
    api,  # noqa: F401 (fixture)
    running_api,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
LOGIN = "/api/v1/auth/login"


async def test_login_cookie_me_logout(api: Api) -> None:  # noqa: F811
    c = api.client
    r = await c.post(LOGIN, json={"name": USERS[Role.OPERATOR], "password": PASSWORD})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    me = await c.get("/api/v1/auth/me")  # the cookie alone
    assert me.json() == {
        "name": "operator1",
        "role": "operator",
        "via": "session",
        "expires_ms": r.json()["expires_ms"],
    }
    assert (await c.post("/api/v1/auth/logout")).status_code == 204
    token = r.json()["token"]
    c.cookies.clear()
    again = await c.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401


async def test_wrong_password_and_unknown_user(api: Api) -> None:  # noqa: F811
    c = api.client
    assert (await c.post(LOGIN, json={"name": "viewer1", "password": "nope"})).status_code == 401
    assert (await c.post(LOGIN, json={"name": "ghost", "password": "nope"})).status_code == 401
    assert (await c.post(LOGIN, json={"name": "bad name!", "password": "x"})).status_code == 422
    audit = (await c.get("/api/v1/audit", headers=api.auth(Role.ADMIN))).json()
    failed = [e["actor"] for e in audit if e["action"] == "login.failed"]
    assert "viewer1" in failed
    assert "ghost" in failed


async def test_api_tokens(api: Api) -> None:  # noqa: F811
    admin = api.auth(Role.ADMIN)
    r = await api.client.post(
        "/api/v1/tokens", json={"label": "campus-bi", "role": "operator"}, headers=admin
    )
    assert r.status_code == 201
    token, tid = r.json()["token"], r.json()["id"]
    bearer = {"Authorization": f"Bearer {token}"}
    me = (await api.client.get("/api/v1/auth/me", headers=bearer)).json()
    assert (me["name"], me["role"], me["via"]) == ("token:campus-bi", "operator", "token")
    listed = (await api.client.get("/api/v1/tokens", headers=admin)).json()
    assert any(t["id"] == tid and not t["revoked"] for t in listed)
    assert "token" not in listed[0]
    assert (await api.client.delete(f"/api/v1/tokens/{tid}", headers=admin)).status_code == 204
    assert (await api.client.get("/api/v1/auth/me", headers=bearer)).status_code == 401
    assert (await api.client.delete("/api/v1/tokens/nope", headers=admin)).status_code == 404


async def test_rate_limit_expiry_and_token_expiry(tmp_path: Path) -> None:
    async with running_api(tmp_path, session_ttl_s=3600) as a:
        c = a.client
        for _ in range(5):
            r = await c.post(LOGIN, json={"name": "viewer1", "password": "wrong"})
            assert r.status_code == 401
        r = await c.post(LOGIN, json={"name": "viewer1", "password": PASSWORD})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0
        # Another name from the same address still gets in (an address has more tries).
        assert (
            await c.post(LOGIN, json={"name": "operator1", "password": PASSWORD})
        ).status_code == 200
        a.clock.advance(301)
        r = await c.post(LOGIN, json={"name": "viewer1", "password": PASSWORD})
        assert r.status_code == 200
        session = {"Authorization": f"Bearer {r.json()['token']}"}
        t = await c.post(
            "/api/v1/tokens", json={"label": "bi", "ttl_days": 1}, headers=a.auth(Role.ADMIN)
        )
        token = {"Authorization": f"Bearer {t.json()['token']}"}
        a.clock.advance(3599)
        assert (await c.get("/api/v1/auth/me", headers=session)).status_code == 200
        a.clock.advance(2)
        assert (await c.get("/api/v1/auth/me", headers=session)).status_code == 401
        assert (await c.get("/api/v1/auth/me", headers=token)).status_code == 200
        a.clock.advance(86_400)
        assert (await c.get("/api/v1/auth/me", headers=token)).status_code == 401


def _run_cli(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        code = cli_main(argv)
    finally:
        sys.stdin, sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


async def test_first_admin_from_the_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        "building: {id: b07, floors: 6}\n"
        f"privacy: {{card_key: {'k' * 32}}}\n"
        f"storage: {{path: {tmp_path / 'gw.sqlite'}}}\n"
        "api: {enabled: true}\n"
    )
    add = ["users", "add", "--config", str(cfg), "--name", "chief", "--role", "admin"]
    code, out, err = await asyncio.to_thread(_run_cli, add)
    assert code == 0, err
    password = next(
        line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("password: ")
    )
    assert len(password) >= 12
    code, _, err = await asyncio.to_thread(_run_cli, add)
    assert code == 1
    assert "exists" in err
    short = [
        "users",
        "add",
        "--config",
        str(cfg),
        "--name",
        "x",
        "--role",
        "viewer",
        "--password-stdin",
    ]
    code, _, err = await asyncio.to_thread(_run_cli, short, "short\n")
    assert code == 1
    assert "12 characters" in err
    code, out, _ = await asyncio.to_thread(_run_cli, ["users", "list", "--config", str(cfg)])
    assert "chief\tadmin" in out
    async with running_api(tmp_path) as a:
        r = await a.client.post(LOGIN, json={"name": "chief", "password": password})
        assert r.status_code == 200
        assert r.json()["role"] == "admin"


async def test_demo_one_time_admin(tmp_path: Path) -> None:
    from dashboard_api.demo import cockpit_url, one_time_admin  # noqa: PLC0415

    async with running_api(tmp_path) as a:
        # The harness made users already: a store with users never gets a demo login.
        assert await one_time_admin(a.runtime) is None
    async with running_api(tmp_path / "fresh", service=False) as a:
        await a.runtime.store.commit(
            WriteBatch(sql=[("DELETE FROM api_sessions", [()]), ("DELETE FROM api_users", [()])])
        )
        made = await one_time_admin(a.runtime)
        assert made is not None
        name, password = made
        r = await a.client.post(LOGIN, json={"name": name, "password": password})
        assert r.json()["role"] == "admin"
        assert cockpit_url(a.runtime, a.server.port) == f"{a.base}/"


async def test_generated_passwords_are_long_and_unambiguous() -> None:
    made = {generate_password() for _ in range(200)}
    assert len(made) == 200
    for p in made:
        groups = p.split("-")
        assert [len(g) for g in groups] == [5, 5, 5, 5]
        assert set("".join(groups)) <= set(PASSWORD_ALPHABET)
        assert len(p) >= MIN_PASSWORD
    assert not set(PASSWORD_ALPHABET) & set("l1o0iIO")
