"""What every component gets: the runtime container, the component contract and health states."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gateway.bus import Bus
from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.model import Catalog
from gateway.privacy import Pseudonymizer

if TYPE_CHECKING:
    from gateway.config.root import GatewayConfig
    from gateway.storage.store import Store
    from rules.service import AlertService


class ConfigurationError(Exception):
    """A component cannot run with its configuration: the supervisor parks it instead of
    restarting it, and reports the message (which names the key and the fix)."""


class Stage(enum.IntEnum):
    """Shutdown order: ingest stops first, the store last."""

    INGEST = 0
    RULES = 10
    OUTPUT = 20  # API, sinks, notifiers


class HealthState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"
    RESTARTING = "restarting"
    PARKED = "parked"
    STOPPED = "stopped"


@dataclass(slots=True)
class ComponentHealth:
    state: HealthState = HealthState.STARTING
    detail: str = ""
    restarts: int = 0
    since_ms: int = 0


@dataclass(slots=True)
class HealthRegistry:
    clock: Clock
    components: dict[str, ComponentHealth] = field(default_factory=dict)

    def set(self, name: str, state: HealthState, detail: str = "") -> None:
        h = self.components.setdefault(name, ComponentHealth())
        if h.state is not state:
            h.since_ms = self.clock.now_ms()
        h.state = state
        h.detail = detail

    def ready(self) -> bool:
        return all(
            h.state in (HealthState.RUNNING, HealthState.DEGRADED) for h in self.components.values()
        )


class Component(Protocol):
    """A long-running part of the gateway, run as a named task by the supervisor.

    `run` returns only when cancelled (or when its work is finished). Raising
    `ConfigurationError` parks the component; any other exception restarts it with
    jittered exponential backoff. On shutdown the supervisor cancels components stage by
    stage; `run` must finish what it received (commit, acknowledge) in its cancellation path.
    Components report finer health through `runtime.health.set(name, ...)`.
    """

    name: str
    stage: Stage

    async def run(self) -> None: ...


@dataclass(slots=True)
class Runtime:
    config: GatewayConfig
    config_path: Path | None
    clock: Clock
    store: Store
    bus: Bus
    catalog: Catalog
    metrics: Metrics
    pseudonymizer: Pseudonymizer
    health: HealthRegistry
    alert_service: AlertService | None = None
    """Set by the rule engine's component factory; the API acts on alerts through it."""
