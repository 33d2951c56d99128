"""The cockpit API on a real store and a real uvicorn server on a loopback port.

`StoreAlertService` is a TEST DOUBLE of the rule engine's AlertService: it commits the same
transitions through the real store and publishes them on the bus, so the API can be tested
before (and independently of) the rule engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher

from collectors.camera.snapshots import INSERT, row, snapshot_dir, write_file
from dashboard_api.auth import Accounts, Role
from dashboard_api.residents import Presence, Resident
from dashboard_api.server import ApiServer
from gateway.app import assemble_runtime
from gateway.bus import Bus, Stream
from gateway.clock import ManualClock
from gateway.config.api import ApiConfig
from gateway.config.root import BuildingConfig, GatewayConfig, PrivacyConfig
from gateway.config.storage import StorageConfig
from gateway.metrics import Metrics
from gateway.model import (
    Alert,
    AlertState,
    AlertTransition,
    Catalog,
    DeviceInfo,
    DeviceKind,
    MetricInfo,
    Severity,
)
from gateway.runtime import HealthState, Runtime
from gateway.storage.batch import WriteBatch
from gateway.storage.store import Store
from rules.service import AlertNotFound, AlertService, InvalidTransition

START_MS = 1_780_000_000_000
PASSWORD = "correct horse battery"
USERS = {role: f"{role.value}1" for role in Role}
POWER = MetricInfo("power", "W", "room active power")


def example_catalog(floors: int = 6, rooms_per_floor: int = 2) -> Catalog:
    cat = Catalog("b07")
    for i, d in enumerate(("in", "in", "out", "out"), start=1):
        cat.add(DeviceInfo(f"gate-{d}-{i}", DeviceKind.GATE, floor=1, zone="lobby"))
    for i in (1, 2):
        cat.add(DeviceInfo(f"term-{i}", DeviceKind.TERMINAL, floor=1, zone="lobby"))
    for f in range(1, floors + 1):
        cat.add(DeviceInfo(f"safety-{f}", DeviceKind.SAFETY_IO, floor=f))
        for r in range(1, rooms_per_floor + 1):
            room = f"{f}{r:02d}"
            cat.add(
                DeviceInfo(f"meter-{room}", DeviceKind.METER, floor=f, room=room, metrics=(POWER,))
            )
    for i in range(1, 5):
        cat.add(DeviceInfo(f"cam-{i}", DeviceKind.CAMERA, floor=1 if i <= 2 else 3))
    return cat


class StoreAlertService(AlertService):
    """Test double: the rule engine's operator actions, committed through the real store."""

    def __init__(self, store: Store, bus: Bus, clock: ManualClock) -> None:
        self.store, self.bus, self.clock = store, bus, clock

    async def _apply(
        self, alert_id: str, action: str, actor: str, note: str, **change: Any
    ) -> Alert:
        a = await self.store.alert(alert_id)
        if a is None:
            raise AlertNotFound(alert_id)
        if a.state is AlertState.RESOLVED and action != "comment":
            raise InvalidTransition(f"alert {alert_id} is resolved")
        if action == "acknowledge" and a.state is not AlertState.OPEN:
            raise InvalidTransition(f"alert {alert_id} is {a.state}")
        now = self.clock.now_ms()
        new = dataclasses.replace(a, updated_ms=now, **change)
        t = AlertTransition(alert_id, now, action, actor, new.state, new.severity, note)
        await self.store.commit(WriteBatch(alerts=[new], transitions=[t]))
        await self.bus.publish(Stream.ALERTS, new)
        return new

    async def acknowledge(self, alert_id: str, actor: str, note: str = "") -> Alert:
        return await self._apply(
            alert_id, "acknowledge", actor, note, state=AlertState.ACKNOWLEDGED
        )

    async def assign(self, alert_id: str, actor: str, assignee: str) -> Alert:
        return await self._apply(alert_id, "assign", actor, "", assignee=assignee)

    async def resolve(self, alert_id: str, actor: str, note: str) -> Alert:
        return await self._apply(alert_id, "resolve", actor, note, state=AlertState.RESOLVED)

    async def comment(self, alert_id: str, actor: str, note: str) -> Alert:
        return await self._apply(alert_id, "comment", actor, note)


@dataclass
class FixedResidents:
    """A residents directory with fixed content (the rule engine's is not available yet)."""

    residents: list[Resident] = field(default_factory=list)

    async def roster(self) -> list[Resident] | None:
        return self.residents

    async def presence(self, day_start_ms: int, now_ms: int) -> Presence | None:
        inside = sum(1 for r in self.residents if r.present)
        return Presence(len(self.residents), inside, 0.9, 1)

    async def name_of(self, subject: str) -> str | None:
        return next((r.name for r in self.residents if r.subject == subject), None)


def make_config(tmp_path: Path, **api: Any) -> GatewayConfig:
    return GatewayConfig(
        building=BuildingConfig(id="b07", name="7号楼", floors=6),
        privacy=PrivacyConfig(card_key="k" * 32),  # type: ignore[arg-type]
        storage=StorageConfig(path=tmp_path / "gw.sqlite"),
        api=ApiConfig(enabled=True, port=0, **api),
    )


def alert(
    n: int,
    *,
    rule: str = "gate.tailgate",
    subject: str = "gate-in-1",
    severity: Severity = Severity.WARNING,
    state: AlertState = AlertState.OPEN,
    opened_ms: int = START_MS - 60_000,
    data: dict[str, Any] | None = None,
    receivers: tuple[str, ...] = ("desk",),
) -> Alert:
    ack = {Severity.CRITICAL: 120_000, Severity.WARNING: 600_000}.get(severity)
    res = {Severity.CRITICAL: 1_800_000, Severity.WARNING: 86_400_000}.get(severity)
    return Alert(
        id=f"a{n}",
        rule=rule,
        subject=subject,
        severity=severity,
        state=state,
        opened_ms=opened_ms,
        updated_ms=opened_ms,
        message=f"{rule} on {subject}",
        receivers=receivers,
        ack_deadline_ms=None if ack is None else opened_ms + ack,
        resolve_deadline_ms=None if res is None else opened_ms + res,
        data=data or {},
    )


def opening(a: Alert) -> AlertTransition:
    return AlertTransition(a.id, a.opened_ms, "open", "system", a.state, a.severity)


@dataclass
class Api:
    runtime: Runtime
    clock: ManualClock
    server: ApiServer
    base: str
    client: httpx.AsyncClient
    tokens: dict[Role, str]
    residents: FixedResidents

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def add_alert(self, a: Alert, publish: bool = True) -> None:
        await self.runtime.store.commit(WriteBatch(alerts=[a], transitions=[opening(a)]))
        if publish:
            await self.runtime.bus.publish(Stream.ALERTS, a)


@contextlib.asynccontextmanager
async def running_api(
    tmp_path: Path,
    *,
    service: bool = True,
    rules: bool = False,
    residents: FixedResidents | None = None,
    **api: Any,
) -> AsyncIterator[Api]:
    """The API on a real store; alert actions through the test double, or with `rules=True`
    through the real rule engine (its components run too)."""
    clock = ManualClock(START_MS)
    config = make_config(tmp_path, **api)
    store = await Store.open(config.storage, clock, Metrics(), retention_loop=False)
    runtime = assemble_runtime(config, store, clock, catalog=example_catalog())
    bus = runtime.bus
    engine_tasks: list[asyncio.Task[None]] = []
    if rules:
        from rules.component import build_components  # noqa: PLC0415

        for component in build_components(runtime):
            engine_tasks.append(asyncio.create_task(component.run(), name=component.name))
    elif service:
        runtime.alert_service = StoreAlertService(store, bus, clock)
    runtime.health.set("store", HealthState.RUNNING)
    directory = residents if residents is not None else FixedResidents()
    server = ApiServer(runtime, directory)
    task = asyncio.create_task(server.run())
    try:
        await asyncio.wait_for(server.started.wait(), 10)
        base = f"http://127.0.0.1:{server.port}"
        accounts = accounts_for(runtime)
        tokens: dict[Role, str] = {}
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for role, name in USERS.items():
                await accounts.add_user(name, role, PASSWORD, actor="test")
                r = await client.post(
                    "/api/v1/auth/login", json={"name": name, "password": PASSWORD}
                )
                assert r.status_code == 200, r.text
                tokens[role] = r.json()["token"]
            client.cookies.clear()
            yield Api(runtime, clock, server, base, client, tokens, directory)
    finally:
        for t in [task, *engine_tasks]:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await store.close()


# Cheap Argon2 parameters for test users only: verification reads them from the hash.
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def accounts_for(runtime: Runtime) -> Accounts:
    """The runtime's accounts, hashing new passwords with `TEST_HASHER`."""
    cfg = runtime.config.api
    return Accounts(
        runtime.store,
        runtime.clock,
        session_ttl_s=cfg.session_ttl_s,
        max_failures=cfg.login.max_failures,
        window_s=cfg.login.window_s,
        hasher=TEST_HASHER,
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """One API per test module (hashing passwords with Argon2 is deliberately slow)."""
    async with running_api(tmp_path_factory.mktemp("api")) as a:
        yield a


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    event: str
    data: Any


class SseReader:
    """Reads Server-Sent Events from an open httpx streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()
        self.comments = 0

    async def next(self, timeout: float = 5.0) -> SseEvent:
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> SseEvent:
        ev_id: str | None = None
        event = "message"
        data: list[str] = []
        async for line in self._lines:
            if line == "":
                if data:
                    return SseEvent(ev_id, event, json.loads("\n".join(data)))
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "id":
                ev_id = value
            elif key == "event":
                event = value
            elif key == "data":
                data.append(value)
        raise EOFError("the stream ended")

    async def until(self, event: str, timeout: float = 5.0) -> SseEvent:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            ev = await self.next(max(left, 0.001))
            if ev.event == event:
                return ev


JPEG = b"\xff\xd8jpeg\xff\xd9"


async def keep_snapshot(api: Api, camera: str, event_id: str, ts_ms: int) -> None:
    """Keep a snapshot as the camera collector does: the file, then its row."""
    root = snapshot_dir(api.runtime.config)
    path = write_file(root, camera, event_id, ts_ms, JPEG)
    await api.runtime.store.commit(
        WriteBatch(sql=[(INSERT, [row(event_id, camera, ts_ms, path, len(JPEG))])])
    )
