"""Users, roles, password hashing, sessions, API tokens and login rate limiting.

Secrets (session cookies, API tokens) are random; only their SHA-256 is stored. Passwords are
hashed with Argon2id. All writes go through the store's writer (`WriteBatch.sql`), together
with the audit record that describes them.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.clock import Clock
from gateway.model import AuditRecord
from gateway.storage.batch import WriteBatch
from gateway.storage.store import Store


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    COUNSELLOR = "counsellor"
    ADMIN = "admin"


NAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"
MIN_PASSWORD = 12
CLIENT_FACTOR = 4
DEFAULT_HASHER = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a logged-in user or an integrator's API token."""

    name: str
    role: Role
    via: str  # "session" | "token"
    expires_ms: int


@functools.cache
def _dummy_hash() -> str:
    return DEFAULT_HASHER.hash("not-a-password: equalises the time of unknown names")


def verify_password(stored: str | None, password: str) -> bool:
    """Check `password` against an Argon2 hash (its parameters are in the hash); with no hash,
    spend the same time and return False."""
    try:
        return DEFAULT_HASHER.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class PasswordTooShort(ValueError):
    pass


class UserExists(ValueError):
    pass


class BadName(ValueError):
    pass


class RateLimited(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class UserRow:
    name: str
    role: Role
    created_ms: int
    disabled: bool


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: str
    label: str
    role: Role
    created_by: str
    created_ms: int
    expires_ms: int
    revoked: bool


class Accounts:
    """Everything about who may log in, on top of the store."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        session_ttl_s: int,
        max_failures: int,
        window_s: int,
        hasher: PasswordHasher = DEFAULT_HASHER,
    ) -> None:
        self._hasher = hasher
        self._store = store
        self._clock = clock
        self._session_ttl_ms = session_ttl_s * 1000
        self._max_failures = max_failures
        self._window_ms = window_s * 1000
        self._cache: dict[str, tuple[Principal, float]] = {}

    # -- users -----------------------------------------------------------------------------

    async def add_user(self, name: str, role: Role, password: str, actor: str) -> None:
        if not re.fullmatch(NAME_PATTERN, name):
            raise BadName(f"a user name is 1-64 of A-Z a-z 0-9 _ . @ -, not {name!r}")
        if len(password) < MIN_PASSWORD:
            raise PasswordTooShort(f"a password needs at least {MIN_PASSWORD} characters")
        if await self._user(name) is not None:
            raise UserExists(f"user {name!r} exists already")
        hashed = await asyncio.to_thread(self._hasher.hash, password)
        now = self._clock.now_ms()
        await self._store.commit(
            WriteBatch(
                sql=[
                    (
                        "INSERT INTO api_users (name, role, password_hash, created_ms)"
                        " VALUES (?, ?, ?, ?)",
                        [(name, str(role), hashed, now)],
                    )
                ],
                audit=[AuditRecord(now, actor, "user.add", name, {"role": str(role)})],
            )
        )

    async def users(self) -> list[UserRow]:
        def q(db: sqlite3.Connection) -> list[UserRow]:
            rows = db.execute(
                "SELECT name, role, created_ms, disabled FROM api_users ORDER BY name"
            ).fetchall()
            return [UserRow(r[0], Role(r[1]), r[2], bool(r[3])) for r in rows]

        return await self._store.read(q)

    async def _user(self, name: str) -> tuple[Role, str, bool] | None:
        def q(db: sqlite3.Connection) -> tuple[Role, str, bool] | None:
            r = db.execute(
                "SELECT role, password_hash, disabled FROM api_users WHERE name = ?", (name,)
            ).fetchone()
            return None if r is None else (Role(r[0]), str(r[1]), bool(r[2]))

        return await self._store.read(q)

    # -- login -----------------------------------------------------------------------------

    async def _failures(self, user: str, client: str, since_ms: int) -> tuple[int, int]:
        def q(db: sqlite3.Connection) -> tuple[int, int]:
            by_user = db.execute(
                "SELECT count(*) FROM api_login_attempts WHERE user = ? AND ts_ms >= ? AND ok = 0",
                (user, since_ms),
            ).fetchone()[0]
            by_client = db.execute(
                "SELECT count(*) FROM api_login_attempts"
                " WHERE client = ? AND ts_ms >= ? AND ok = 0",
                (client, since_ms),
            ).fetchone()[0]
            return int(by_user), int(by_client)

        return await self._store.read(q)

    async def login(self, name: str, password: str, client: str) -> tuple[str, Principal]:
        """Return a new session secret, or raise PermissionError / RateLimited."""
        now = self._clock.now_ms()
        by_user, by_client = await self._failures(name, client, now - self._window_ms)
        # One address may be a proxy for many people: it gets more tries than one name.
        if by_user >= self._max_failures or by_client >= CLIENT_FACTOR * self._max_failures:
            await self._store.commit(
                WriteBatch(audit=[AuditRecord(now, name, "login.limited", client)])
            )
            raise RateLimited(max(1, self._window_ms // 1000))
        user = await self._user(name)
        # An unknown name costs the same hash as a known one.
        ok = await asyncio.to_thread(verify_password, None if user is None else user[1], password)
        if user is None or user[2] or not ok:
            await self._store.commit(
                WriteBatch(
                    sql=[
                        (
                            "INSERT INTO api_login_attempts (ts_ms, user, client, ok)"
                            " VALUES (?, ?, ?, 0)",
                            [(now, name, client)],
                        )
                    ],
                    audit=[AuditRecord(now, name, "login.failed", client)],
                )
            )
            raise PermissionError("wrong user name or password")
        secret = new_secret()
        expires = now + self._session_ttl_ms
        await self._store.commit(
            WriteBatch(
                sql=[
                    (
                        "INSERT INTO api_sessions (token_hash, user, created_ms, expires_ms)"
                        " VALUES (?, ?, ?, ?)",
                        [(digest(secret), name, now, expires)],
                    ),
                    (
                        "INSERT INTO api_login_attempts (ts_ms, user, client, ok)"
                        " VALUES (?, ?, ?, 1)",
                        [(now, name, client)],
                    ),
                ],
                audit=[AuditRecord(now, name, "login", client)],
            )
        )
        return secret, Principal(name, user[0], "session", expires)

    async def logout(self, secret: str, actor: str) -> None:
        h = digest(secret)
        self._cache.pop(h, None)
        now = self._clock.now_ms()
        await self._store.commit(
            WriteBatch(
                sql=[("UPDATE api_sessions SET revoked = 1 WHERE token_hash = ?", [(h,)])],
                audit=[AuditRecord(now, actor, "logout", "")],
            )
        )

    # -- resolving a secret ------------------------------------------------------------------

    async def principal(self, secret: str) -> Principal | None:
        """Who holds this session secret or API token, if it is valid now."""
        h = digest(secret)
        now = self._clock.now_ms()
        mono = self._clock.monotonic()
        hit = self._cache.get(h)
        if hit is not None and mono - hit[1] < 2.0 and hit[0].expires_ms > now:
            return hit[0]

        def q(db: sqlite3.Connection) -> Principal | None:
            r = db.execute(
                "SELECT s.user, u.role, s.expires_ms FROM api_sessions s"
                " JOIN api_users u ON u.name = s.user"
                " WHERE s.token_hash = ? AND s.revoked = 0 AND u.disabled = 0",
                (h,),
            ).fetchone()
            if r is not None:
                return Principal(r[0], Role(r[1]), "session", int(r[2]))
            r = db.execute(
                "SELECT label, role, expires_ms FROM api_tokens"
                " WHERE token_hash = ? AND revoked = 0",
                (h,),
            ).fetchone()
            if r is not None:
                return Principal(f"token:{r[0]}", Role(r[1]), "token", int(r[2]))
            return None

        p = await self._store.read(q)
        if p is None or p.expires_ms <= now:
            self._cache.pop(h, None)
            return None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[h] = (p, mono)
        return p

    # -- API tokens ----------------------------------------------------------------------------

    async def create_token(
        self, label: str, role: Role, ttl_days: int, actor: str
    ) -> tuple[str, TokenRow]:
        now = self._clock.now_ms()
        secret = "cet_" + new_secret()
        row = TokenRow(
            secrets.token_hex(8), label, role, actor, now, now + ttl_days * 86_400_000, False
        )
        await self._store.commit(
            WriteBatch(
                sql=[
                    (
                        "INSERT INTO api_tokens (id, token_hash, label, role, created_by,"
                        " created_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                row.id,
                                digest(secret),
                                label,
                                str(role),
                                actor,
                                now,
                                row.expires_ms,
                            )
                        ],
                    )
                ],
                audit=[
                    AuditRecord(
                        now, actor, "token.create", row.id, {"label": label, "role": str(role)}
                    )
                ],
            )
        )
        return secret, row

    async def tokens(self) -> list[TokenRow]:
        def q(db: sqlite3.Connection) -> list[TokenRow]:
            rows = db.execute(
                "SELECT id, label, role, created_by, created_ms, expires_ms, revoked"
                " FROM api_tokens ORDER BY created_ms"
            ).fetchall()
            return [TokenRow(r[0], r[1], Role(r[2]), r[3], r[4], r[5], bool(r[6])) for r in rows]

        return await self._store.read(q)

    async def revoke_token(self, token_id: str, actor: str) -> bool:
        def q(db: sqlite3.Connection) -> str | None:
            r = db.execute("SELECT token_hash FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
            return None if r is None else str(r[0])

        h = await self._store.read(q)
        if h is None:
            return False
        self._cache.pop(h, None)
        await self._store.commit(
            WriteBatch(
                sql=[("UPDATE api_tokens SET revoked = 1 WHERE id = ?", [(token_id,)])],
                audit=[AuditRecord(self._clock.now_ms(), actor, "token.revoke", token_id)],
            )
        )
        return True
