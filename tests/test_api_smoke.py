"""First contact: the server starts, logs in, answers."""

from __future__ import annotations

import pytest

from dashboard_api.auth import Role
from tests.test_api_harness import Api, api  # noqa: F401 (fixture)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_me_and_kpis(api: Api) -> None:  # noqa: F811
    r = await api.client.get("/api/v1/auth/me", headers=api.auth(Role.ADMIN))
    assert r.status_code == 200
    assert r.json()["role"] == "admin"
    r = await api.client.get("/api/v1/kpis", headers=api.auth(Role.VIEWER))
    assert r.status_code == 200, r.text
    print(r.json())
