"""Logging in and out, who am I, and integrators' API tokens."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi import Path as PathParam

from dashboard_api.auth import (
    NAME_PATTERN,
    LastAdmin,
    Principal,
    RateLimited,
    UnknownUser,
    UserRow,
    generate_password,
)
from dashboard_api.context import (
    ADMIN,
    ALL,
    AUTH_RESPONSES,
    SESSION_COOKIE,
    ApiContext,
    ctx,
    need,
)
from dashboard_api.schemas import (
    LoginIn,
    LoginOut,
    Me,
    PasswordChangeIn,
    PasswordSet,
    PasswordSetIn,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserOut,
)

router = APIRouter(prefix="/api/v1", tags=["auth"])
Ctx = Annotated[ApiContext, Depends(ctx)]
UserName = Annotated[str, PathParam(pattern=NAME_PATTERN)]
NO_USER: dict[int | str, dict[str, object]] = {404: {"description": "No such user"}}


@router.post(
    "/auth/login",
    responses={
        401: {"description": "Wrong user name or password"},
        429: {"description": "Too many failed logins; see Retry-After"},
    },
)
async def login(body: LoginIn, request: Request, response: Response, c: Ctx) -> LoginOut:
    try:
        secret, p = await c.accounts.login(body.name, body.password, _client(request))
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
    secret = _secret(request)
    if secret and p.via == "session":
        await c.accounts.logout(secret, p.name)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/me", responses=AUTH_RESPONSES)
async def me(p: Annotated[Principal, Depends(need(ALL))]) -> Me:
    return Me(name=p.name, role=p.role, via=p.via, expires_ms=p.expires_ms)


@router.post(
    "/auth/me/password",
    status_code=204,
    responses={
        **AUTH_RESPONSES,
        403: {"description": "The current password is wrong, or the caller is an API token"},
        429: {"description": "Too many wrong passwords; see Retry-After"},
    },
)
async def change_password(
    body: PasswordChangeIn,
    request: Request,
    p: Annotated[Principal, Depends(need(ALL))],
    c: Ctx,
) -> Response:
    """Change the caller's own password, given the current one (checked and rate limited as a
    login is). The caller's other sessions end; this one goes on."""
    if p.via != "session":
        raise HTTPException(403, "an API token has no password: log in as a user to change one")
    try:
        await c.accounts.change_own_password(
            p.name, body.current_password, body.new_password, _client(request), _secret(request)
        )
    except RateLimited as exc:
        raise HTTPException(429, str(exc), {"Retry-After": str(exc.retry_after_s)}) from None
    except PermissionError as exc:
        raise HTTPException(403, str(exc)) from None
    return Response(status_code=204)


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """An account change the accounts refuse, as the HTTP error that says so."""
    try:
        yield
    except UnknownUser as exc:
        raise HTTPException(404, str(exc)) from None
    except LastAdmin as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/users", responses=AUTH_RESPONSES, tags=["admin"])
async def users(_: Annotated[Principal, Depends(need(ADMIN))], c: Ctx) -> list[UserOut]:
    """Every cockpit user, with whether they are disabled."""
    return [_user_out(u) for u in await c.accounts.users()]


@router.post(
    "/users/{name}/password",
    responses={
        **AUTH_RESPONSES,
        **NO_USER,
        400: {"description": "Your own password is changed with the current one"},
    },
    tags=["admin"],
)
async def set_password(
    name: UserName,
    body: PasswordSetIn,
    p: Annotated[Principal, Depends(need(ADMIN))],
    c: Ctx,
) -> PasswordSet:
    """Set a user's password (one is generated when none is given); their sessions end."""
    if name == p.name:
        raise HTTPException(
            400, "change your own password at /api/v1/auth/me/password, with the current one"
        )
    password = body.password or generate_password()
    with _refusals():
        await c.accounts.set_password(name, password, p.name)
    return PasswordSet(name=name, password=None if body.password else password)


@router.post(
    "/users/{name}/disable",
    responses={
        **AUTH_RESPONSES,
        **NO_USER,
        409: {"description": "The last enabled admin cannot be disabled"},
    },
    tags=["admin"],
)
async def disable_user(
    name: UserName, p: Annotated[Principal, Depends(need(ADMIN))], c: Ctx
) -> UserOut:
    """Disable a user (someone who left): they cannot log in, and their sessions end at once."""
    with _refusals():
        return _user_out(await c.accounts.set_enabled(name, False, p.name))


@router.post("/users/{name}/enable", responses={**AUTH_RESPONSES, **NO_USER}, tags=["admin"])
async def enable_user(
    name: UserName, p: Annotated[Principal, Depends(need(ADMIN))], c: Ctx
) -> UserOut:
    """Let a disabled user log in again (with their password as it was)."""
    with _refusals():
        return _user_out(await c.accounts.set_enabled(name, True, p.name))


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


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _secret(request: Request) -> str | None:
    """The session secret or token the request came with (the bearer header wins)."""
    header = request.headers.get("authorization", "")
    secret = header[7:].strip() if header.lower().startswith("bearer ") else None
    return secret or request.cookies.get(SESSION_COOKIE)


def _user_out(u: UserRow) -> UserOut:
    return UserOut(name=u.name, role=u.role, created_ms=u.created_ms, disabled=u.disabled)


def _fields(t: object) -> dict[str, object]:
    names = ("id", "label", "role", "created_by", "created_ms", "expires_ms", "revoked")
    return {n: getattr(t, n) for n in names}
