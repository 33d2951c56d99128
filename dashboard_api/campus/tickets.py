"""Stream tickets: what lets the page's `EventSource` (which cannot send an `Authorization`
header) open the live stream. A user with a valid bearer token gets one as an HttpOnly cookie
scoped to the stream's path; it names the user and an expiry, signed with a key made at
start, so it holds no secret of the user and ends with the process."""

from __future__ import annotations

import hashlib
import hmac
import secrets


class StreamTickets:
    def __init__(self, ttl_s: float) -> None:
        self._key = secrets.token_bytes(32)
        self.ttl_s = ttl_s

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    def issue(self, user: str, now_ms: int) -> str:
        body = f"{user}.{now_ms + int(self.ttl_s * 1000)}"
        return f"{body}.{self._mac(body)}"

    def user(self, ticket: str, now_ms: int) -> str | None:
        """The user named by a ticket this process issued and that has not expired."""
        body, _, mac = ticket.rpartition(".")
        user, _, expires = body.rpartition(".")
        if not user or not expires.isdigit():
            return None
        if not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        return user if now_ms < int(expires) else None
