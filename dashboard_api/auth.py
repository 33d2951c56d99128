"""Users, roles, password hashing, sessions, API tokens and login rate limiting; password
changes and disabled users (who cannot log in, and whose sessions end when they are disabled).

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
from gateway.storage.batch import SqlParams, WriteBatch
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


PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
"""Without look-alikes (l and 1, o and 0, i, capitals): a generated password is read out or
written down when it is handed over."""


def generate_password(groups: int = 4) -> str:
    """Four groups of five, e.g. `k7mpq-3xrtz-...`: 20 characters of a 31-letter alphabet, about
    99 bits."""
    return "-".join(
        "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(5)) for _ in range(groups)
    )


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class PasswordTooShort(ValueError):
    pass


class UserExists(ValueError):
    pass


class BadName(ValueError):
    pass


class UnknownUser(LookupError):
    pass


class LastAdmin(ValueError):
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


def _check_length(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PasswordTooShort(f"a password needs at least {MIN_PASSWORD} characters")


def _last_admin(name: str) -> LastAdmin:
    return LastAdmin(f"{name!r} is the last enabled admin: enable or add another admin first")


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
        # Bumped when sessions end, so a lookup that began before is not cached.
        self._generation = 0
        # Checks and writes that must not interleave (the last enabled admin stays enabled).
        self._changes = asyncio.Lock()

    # -- users -----------------------------------------------------------------------------

    async def add_user(self, name: str, role: Role, password: str, actor: str) -> None:
        if not re.fullmatch(NAME_PATTERN, name):
            raise BadName(f"a user name is 1-64 of A-Z a-z 0-9 _ . @ -, not {name!r}")
        _check_length(password)
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

    # -- upkeep: passwords and leavers ---------------------------------------------------------

    async def set_password(
        self, name: str, new_password: str, actor: str, keep_secret: str | None = None
    ) -> None:
        """Give `name` a new password and end their sessions, all but the one holding
        `keep_secret` (the session of a user changing their own password)."""
        _check_length(new_password)
        hashed = await asyncio.to_thread(self._hasher.hash, new_password)
        keep = "" if keep_secret is None else digest(keep_secret)
        async with self._changes:
            if await self._user(name) is None:
                raise UnknownUser(f"no user {name!r}")
            now = self._clock.now_ms()
            await self._store.commit(
                WriteBatch(
                    sql=[
                        (
                            "UPDATE api_users SET password_hash = ? WHERE name = ?",
                            [(hashed, name)],
                        ),
                        (
                            "UPDATE api_sessions SET revoked = 1"
                            " WHERE user = ? AND revoked = 0 AND token_hash <> ?",
                            [(name, keep)],
                        ),
                    ],
                    audit=[AuditRecord(now, actor, "user.password", name)],
                )
            )
            self._forget_sessions(name, keep)

    async def change_own_password(
        self, name: str, current: str, new_password: str, client: str, keep_secret: str | None
    ) -> None:
        """A user's own change: the current password is checked (and rate limited) as a login
        is; raises PasswordTooShort, PermissionError or RateLimited."""
        _check_length(new_password)
        await self._check_password(
            name, current, client, "user.password", "the current password is wrong"
        )
        await self.set_password(name, new_password, name, keep_secret)

    async def set_enabled(self, name: str, enabled: bool, actor: str) -> UserRow:
        """Enable or disable `name`. Disabling ends their sessions at once; the last enabled
        admin cannot be disabled (LastAdmin)."""
        async with self._changes:
            user = await self._user(name)
            if user is None:
                raise UnknownUser(f"no user {name!r}")
            if (
                not enabled
                and user[0] is Role.ADMIN
                and not user[2]
                and await self._enabled_admins(besides=name) == 0
            ):
                raise _last_admin(name)
            now = self._clock.now_ms()
            sql: list[tuple[str, list[SqlParams]]] = [
                # The condition keeps one admin enabled even against a writer elsewhere.
                (
                    "UPDATE api_users SET disabled = ? WHERE name = ? AND (? = 0"
                    " OR role <> 'admin' OR EXISTS (SELECT 1 FROM api_users o"
                    " WHERE o.role = 'admin' AND o.disabled = 0 AND o.name <> ?))",
                    [(int(not enabled), name, int(not enabled), name)],
                )
            ]
            if not enabled:
                sql.append(
                    (
                        "UPDATE api_sessions SET revoked = 1 WHERE user = ? AND revoked = 0",
                        [(name,)],
                    )
                )
            action = "user.enable" if enabled else "user.disable"
            await self._store.commit(
                WriteBatch(sql=sql, audit=[AuditRecord(now, actor, action, name)])
            )
            if not enabled:
                self._forget_sessions(name, "")
            row = next(u for u in await self.users() if u.name == name)
        if row.disabled == enabled:
            raise _last_admin(name)
        return row

    async def _enabled_admins(self, besides: str) -> int:
        def q(db: sqlite3.Connection) -> int:
            r = db.execute(
                "SELECT count(*) FROM api_users WHERE role = 'admin' AND disabled = 0"
                " AND name <> ?",
                (besides,),
            ).fetchone()
            return int(r[0])

        return await self._store.read(q)

    def _forget_sessions(self, name: str, keep: str) -> None:
        for h, (p, _) in list(self._cache.items()):
            if p.via == "session" and p.name == name and h != keep:
                self._forget(h)
        self._generation += 1

    def _forget(self, h: str) -> None:
        """Drop a secret from the cache once its end is committed; a lookup that began before
        (and may have read it as valid) is not cached either."""
        self._cache.pop(h, None)
        self._generation += 1

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

    async def _check_password(
        self, name: str, password: str, client: str, purpose: str, wrong: str
    ) -> Role:
        """The user's role if `password` is theirs and they may log in; else record a failure
        (audited as `<purpose>.failed`) and raise PermissionError(wrong), or RateLimited."""
        now = self._clock.now_ms()
        by_user, by_client = await self._failures(name, client, now - self._window_ms)
        # One address may be a proxy for many people: it gets more tries than one name.
        if by_user >= self._max_failures or by_client >= CLIENT_FACTOR * self._max_failures:
            await self._store.commit(
                WriteBatch(audit=[AuditRecord(now, name, f"{purpose}.limited", client)])
            )
            raise RateLimited(max(1, self._window_ms // 1000))
        user = await self._user(name)
        # An unknown name, or a disabled user, costs the same hash as anyone else.
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
                    audit=[AuditRecord(now, name, f"{purpose}.failed", client)],
                )
            )
            raise PermissionError(wrong)
        return user[0]

    async def login(self, name: str, password: str, client: str) -> tuple[str, Principal]:
        """Return a new session secret, or raise PermissionError / RateLimited."""
        role = await self._check_password(
            name, password, client, "login", "wrong user name or password"
        )
        now = self._clock.now_ms()
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
        return secret, Principal(name, role, "session", expires)

    async def logout(self, secret: str, actor: str) -> None:
        h = digest(secret)
        now = self._clock.now_ms()
        await self._store.commit(
            WriteBatch(
                sql=[("UPDATE api_sessions SET revoked = 1 WHERE token_hash = ?", [(h,)])],
                audit=[AuditRecord(now, actor, "logout", "")],
            )
        )
        self._forget(h)

    # -- resolving a secret ------------------------------------------------------------------

    async def principal(self, secret: str) -> Principal | None:
        """Who holds this session secret or API token, if it is valid now."""
        h = digest(secret)
        now = self._clock.now_ms()
        mono = self._clock.monotonic()
        hit = self._cache.get(h)
        if hit is not None and mono - hit[1] < 2.0 and hit[0].expires_ms > now:
            return hit[0]
        generation = self._generation

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
        if generation != self._generation:
            return p
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
        await self._store.commit(
            WriteBatch(
                sql=[("UPDATE api_tokens SET revoked = 1 WHERE id = ?", [(token_id,)])],
                audit=[AuditRecord(self._clock.now_ms(), actor, "token.revoke", token_id)],
            )
        )
        self._forget(h)
        return True
