"""What every route reaches: the runtime and the API's services, and who is calling."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from dashboard_api.auth import Accounts, Principal, Role
from dashboard_api.kpis import KpiService
from dashboard_api.residents import ResidentDirectory
from dashboard_api.stream import StreamHub
from gateway.config.api import ApiConfig
from gateway.model import AuditRecord
from gateway.runtime import Runtime
from gateway.storage.batch import WriteBatch

SESSION_COOKIE = "ce_session"
BEARER = HTTPBearer(auto_error=False, description="A session secret or an integrator's API token")
COOKIE = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="The cockpit's session")

ALL = frozenset(Role)
HANDLERS = frozenset({Role.OPERATOR, Role.COUNSELLOR, Role.ADMIN})
NAMES = frozenset({Role.COUNSELLOR, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in, or the session or token expired"},
    403: {"description": "The caller's role may not do this"},
}


@dataclass(slots=True)
class ApiContext:
    runtime: Runtime
    config: ApiConfig
    accounts: Accounts
    hub: StreamHub
    kpis: KpiService
    residents: ResidentDirectory

    async def audit(
        self, actor: str, action: str, target: str, detail: dict[str, Any] | None = None
    ) -> None:
        rec = AuditRecord(self.runtime.clock.now_ms(), actor, action, target, detail or {})
        await self.runtime.store.commit(WriteBatch(audit=[rec]))


def ctx(request: Request) -> ApiContext:
    c: ApiContext = request.app.state.ctx
    return c


def need(roles: frozenset[Role]) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only callers with one of `roles` (401 if nobody is logged in)."""

    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
        cookie: Annotated[str | None, Depends(COOKIE)],
    ) -> Principal:
        secret = bearer.credentials if bearer is not None else cookie
        p = await ctx(request).accounts.principal(secret) if secret else None
        if p is None:
            raise HTTPException(
                401, "not logged in, or the session expired", {"WWW-Authenticate": "Bearer"}
            )
        if p.role not in roles:
            raise HTTPException(403, f"the role {p.role} may not do this")
        return p

    return dependency
