"""Logging in and out, who am I, and integrators' API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from dashboard_api.auth import Principal, RateLimited
from dashboard_api.context import (
    ADMIN,
    ALL,
    AUTH_RESPONSES,
    SESSION_COOKIE,
    ApiContext,
    ctx,
    need,
)
from dashboard_api.schemas import LoginIn, LoginOut, Me, TokenCreated, TokenIn, TokenOut, UserOut

router = APIRouter(prefix="/api/v1", tags=["auth"])
Ctx = Annotated[ApiContext, Depends(ctx)]


@router.post(
    "/auth/login",
    responses={
        401: {"description": "Wrong user name or password"},
        429: {"description": "Too many failed logins; see Retry-After"},
    },
)
async def login(body: LoginIn, request: Request, response: Response, c: Ctx) -> LoginOut:
    client = request.client.host if request.client else "unknown"
    try:
        secret, p = await c.accounts.login(body.name, body.password, client)
    except RateLimited as exc:
        raise HTTPException(429, str(exc), {"Retry-After": str(exc.retry_after_s)}) from None
    except PermissionError as exc:
        raise HTTPException(401, str(exc)) from None
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=c.config.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=c.config.secure_cookies,
        path="/",
    )
    return LoginOut(name=p.name, role=p.role, via=p.via, expires_ms=p.expires_ms, token=secret)


@router.post("/auth/logout", status_code=204, responses=AUTH_RESPONSES)
async def logout(request: Request, p: Annotated[Principal, Depends(need(ALL))], c: Ctx) -> Response:
    header = request.headers.get("authorization", "")
    secret = header[7:].strip() if header.lower().startswith("bearer ") else None
    secret = secret or request.cookies.get(SESSION_COOKIE)
    if secret and p.via == "session":
        await c.accounts.logout(secret, p.name)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me", responses=AUTH_RESPONSES)
async def me(p: Annotated[Principal, Depends(need(ALL))]) -> Me:
    return Me(name=p.name, role=p.role, via=p.via, expires_ms=p.expires_ms)


@router.get("/users", responses=AUTH_RESPONSES, tags=["admin"])
async def users(_: Annotated[Principal, Depends(need(ADMIN))], c: Ctx) -> list[UserOut]:
    return [
        UserOut(name=u.name, role=u.role, created_ms=u.created_ms, disabled=u.disabled)
        for u in await c.accounts.users()
    ]


@router.get("/tokens", responses=AUTH_RESPONSES, tags=["admin"])
async def tokens(_: Annotated[Principal, Depends(need(ADMIN))], c: Ctx) -> list[TokenOut]:
    return [TokenOut(**_fields(t)) for t in await c.accounts.tokens()]


@router.post("/tokens", status_code=201, responses=AUTH_RESPONSES, tags=["admin"])
async def create_token(
    body: TokenIn, p: Annotated[Principal, Depends(need(ADMIN))], c: Ctx
) -> TokenCreated:
    secret, row = await c.accounts.create_token(
        body.label, body.role, body.ttl_days or c.config.token_ttl_days, p.name
    )
    return TokenCreated(token=secret, **_fields(row))


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    responses={**AUTH_RESPONSES, 404: {"description": "No such token"}},
    tags=["admin"],
)
async def revoke_token(
    token_id: str, p: Annotated[Principal, Depends(need(ADMIN))], c: Ctx
) -> Response:
    if not await c.accounts.revoke_token(token_id, p.name):
        raise HTTPException(404, f"no token {token_id!r}")
    return Response(status_code=204)


def _fields(t: object) -> dict[str, object]:
    names = ("id", "label", "role", "created_by", "created_ms", "expires_ms", "revoked")
    return {n: getattr(t, n) for n in names}
