"""For `make demo`: a one-time admin login for the cockpit of a simulated building."""

from __future__ import annotations

from dashboard_api.auth import Accounts, Role, generate_password
from gateway.runtime import Runtime

DEMO_ADMIN = "demo-admin"


async def one_time_admin(runtime: Runtime) -> tuple[str, str] | None:
    """Create `demo-admin` with a fresh random password and return (name, password), or None
    when the store already has users (a real building's store is never given a demo login)."""
    cfg = runtime.config.api
    accounts = Accounts(
        runtime.store,
        runtime.clock,
        session_ttl_s=cfg.session_ttl_s,
        max_failures=cfg.login.max_failures,
        window_s=cfg.login.window_s,
    )
    if await accounts.users():
        return None
    password = generate_password()
    await accounts.add_user(DEMO_ADMIN, Role.ADMIN, password, actor="demo")
    return DEMO_ADMIN, password


def cockpit_url(runtime: Runtime, port: int | None = None) -> str:
    """Where the cockpit is served (pass the bound port when `api.port` is 0)."""
    cfg = runtime.config.api
    host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::") else cfg.host
    return f"http://{host}:{port or cfg.port}/"
