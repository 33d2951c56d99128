"""Runs the gateway's components as named tasks in one event loop.

A component that raises is restarted after a jittered exponential backoff (the backoff starts
over once it has run healthily for a while); one that raises `ConfigurationError` is parked and
reported once. Shutdown cancels the components stage by stage (ingest first, output last), each
stage within its own timeout and the whole within a total budget, then runs the `on_stopped`
hooks (closing the store, which commits what is queued).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from gateway.clock import Clock
from gateway.metrics import LabelKey, Metrics
from gateway.runtime import Component, ConfigurationError, HealthRegistry, HealthState, Stage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before restart number `attempt` (0-based): `initial * factor**attempt`, capped,
    minus a random part of up to `jitter` of it (so restarts of many components spread out)."""

    initial_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 60.0
    jitter: float = 0.2
    healthy_after_s: float = 60.0
    """A component that ran this long before failing starts over at `initial_s`."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.cap_s, self.initial_s * self.factor ** min(attempt, 64))
        return base * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True, slots=True)
class ShutdownPolicy:
    stage_timeout_s: float = 2.5
    """How long the components of one stage get to finish after being cancelled."""
    total_s: float = 9.0
    """The whole shutdown, hooks included (the process exits within 10 s of SIGTERM)."""
    hooks_reserve_s: float = 1.5
    """Part of the total kept for the `on_stopped` hooks (closing the store)."""


@dataclass(slots=True)
class _Running:
    component: Component
    task: asyncio.Task[None]


@dataclass
class Supervisor:
    components: Sequence[Component]
    health: HealthRegistry
    clock: Clock
    rng: random.Random = field(default_factory=random.Random)
    backoff: Backoff = field(default_factory=Backoff)
    shutdown_policy: ShutdownPolicy = field(default_factory=ShutdownPolicy)
    on_stopped: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run after every component stopped, in order (e.g. `store.close`)."""
    metrics: Metrics | None = None
    """Where restarts (`component_restarts_total`) and `component_up` are reported."""
    stragglers: list[str] = field(default_factory=list)
    """Components that did not stop within their stage's timeout."""
    _running: list[_Running] = field(default_factory=list)
    _stopping: bool = False

    def start(self) -> None:
        """Start every component as a task named after it."""
        names = [c.name for c in self.components]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"component names must be unique: {sorted(dupes)}")
        if self.metrics is not None:
            self.metrics.gauge_callback(
                "component_up", self._up, "1 while a component runs (or runs degraded), else 0"
            )
        for comp in self.components:
            self.health.set(comp.name, HealthState.STARTING)
            task = asyncio.create_task(self._keep_running(comp), name=comp.name)
            self._running.append(_Running(comp, task))

    async def run(self, stop: asyncio.Event) -> None:
        """Start the components, run until `stop` is set, then shut down."""
        self.start()
        try:
            await stop.wait()
        finally:
            await self.shutdown()

    def _up(self) -> dict[LabelKey, float]:
        up = (HealthState.RUNNING, HealthState.DEGRADED)
        return {
            (("component", r.component.name),): float(
                self.health.components[r.component.name].state in up
            )
            for r in self._running
            if r.component.name in self.health.components
        }

    async def _keep_running(self, comp: Component) -> None:
        try:
            await self._restart_loop(comp)
        except asyncio.CancelledError:
            self.health.set(comp.name, HealthState.STOPPED)
            raise

    async def _restart_loop(self, comp: Component) -> None:
        attempt = 0
        while not self._stopping:
            started = self.clock.monotonic()
            self.health.set(comp.name, HealthState.RUNNING)
            try:
                await comp.run()
            except ConfigurationError as exc:
                self.health.set(comp.name, HealthState.PARKED, str(exc))
                log.error(
                    "component parked: %s",
                    exc,
                    extra={"component": comp.name, "event": "parked"},
                )
                return
            except Exception as exc:
                if self._stopping:
                    log.exception("component failed while stopping", extra={"component": comp.name})
                    self.health.set(comp.name, HealthState.STOPPED, f"failed: {exc!r}")
                    return
                if self.clock.monotonic() - started >= self.backoff.healthy_after_s:
                    attempt = 0
                delay = self.backoff.delay(attempt, self.rng)
                attempt += 1
                self.health.set(
                    comp.name,
                    HealthState.RESTARTING,
                    f"{type(exc).__name__}: {exc}; restart in {delay:.1f} s",
                )
                self.health.components[comp.name].restarts += 1
                if self.metrics is not None:
                    self.metrics.inc(
                        "component_restarts_total",
                        component=comp.name,
                        help_="Restarts of a component after it failed",
                    )
                log.warning(
                    "component failed, restarting in %.1f s",
                    delay,
                    exc_info=True,
                    extra={"component": comp.name, "attempt": attempt, "delay_s": delay},
                )
                await self.clock.sleep(delay)
                continue
            self.health.set(comp.name, HealthState.STOPPED, "finished")
            log.info("component finished", extra={"component": comp.name})
            return

    async def shutdown(self) -> None:
        """Cancel the components stage by stage, then run the `on_stopped` hooks."""
        if self._stopping:
            return
        self._stopping = True
        loop = asyncio.get_running_loop()
        policy = self.shutdown_policy
        deadline = loop.time() + policy.total_s
        began = loop.time()
        for stage in sorted({r.component.stage for r in self._running}):
            batch = [r for r in self._running if r.component.stage == stage]
            tasks = [r.task for r in batch if not r.task.done()]
            for t in tasks:
                t.cancel()
            budget = min(policy.stage_timeout_s, deadline - policy.hooks_reserve_s - loop.time())
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=max(budget, 0.0))
                for r in batch:
                    if r.task in pending:
                        self.stragglers.append(r.component.name)
                        self.health.set(
                            r.component.name,
                            HealthState.STOPPED,
                            f"did not stop within {budget:.1f} s",
                        )
                        log.error(
                            "component did not stop in time; abandoned",
                            extra={"component": r.component.name, "stage": Stage(stage).name},
                        )
            for r in batch:
                if r.task.done() and not r.task.cancelled() and r.task.exception() is not None:
                    log.error(
                        "component ended with an error",
                        exc_info=r.task.exception(),
                        extra={"component": r.component.name},
                    )
            log.info("stage stopped", extra={"stage": Stage(stage).name})
        for hook in self.on_stopped:
            remaining = max(deadline - loop.time(), 0.5)
            try:
                await asyncio.wait_for(hook(), timeout=remaining)
            except Exception:
                log.exception("shutdown step failed", extra={"step": _name(hook)})
        log.info("shutdown complete", extra={"seconds": round(loop.time() - began, 3)})


def _name(fn: Callable[..., object]) -> str:
    return getattr(fn, "__qualname__", repr(fn))
