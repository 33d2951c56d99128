"""Assembles the gateway from its configuration and runs it until SIGTERM/SIGINT.

Components come from each enabled section's `component` module, imported only when the section
is enabled (so OpenCV is never imported on a gateway without cameras), in `COMPONENT_SOURCES`
order: the rule engine first, because it sets `runtime.alert_service` for the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import importlib.util
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Protocol, cast

from gateway import sdnotify
from gateway.bus import Bus
from gateway.clock import Clock, SystemClock
from gateway.config.loader import ConfigError, build_catalog, load_config
from gateway.config.root import GatewayConfig
from gateway.logs import configure_logging
from gateway.metrics import Metrics
from gateway.model import Catalog
from gateway.privacy import Pseudonymizer
from gateway.runtime import Component, ConfigurationError, HealthRegistry, HealthState, Runtime
from gateway.storage.store import Store
from gateway.supervisor import Supervisor

log = logging.getLogger(__name__)

READY_MESSAGE = "gateway ready"
"""Logged once every component has been started; tests and service managers wait for it."""

COMPONENT_SOURCES: tuple[tuple[str, str], ...] = (
    ("rules", "rules.component"),
    ("mqtt", "collectors.mqtt.component"),
    ("modbus", "collectors.modbus.component"),
    ("cameras", "collectors.camera.component"),
    ("api", "dashboard_api.component"),
    # Hook for the upstream sinks: a `gateway/sinks/component.py` with `build_components`
    # is picked up here when `upstream.enabled` is set.
    ("upstream", "gateway.sinks.component"),
)
"""(configuration section, module with `build_components(runtime)`), in start order."""


class _Factory(Protocol):
    def __call__(self, runtime: Runtime) -> list[Component]: ...


async def build_runtime(config: GatewayConfig, config_path: Path | None, clock: Clock) -> Runtime:
    """Open the store and build what every component shares."""
    catalog = build_catalog(config)  # before opening anything: a bad catalogue opens nothing
    store = await Store.open(config.storage, clock, Metrics())
    return assemble_runtime(config, store, clock, config_path=config_path, catalog=catalog)


def assemble_runtime(
    config: GatewayConfig,
    store: Store,
    clock: Clock,
    *,
    config_path: Path | None = None,
    catalog: Catalog | None = None,
) -> Runtime:
    """The runtime around an opened store; its metrics are the store's registry."""
    return Runtime(
        config=config,
        config_path=config_path,
        clock=clock,
        store=store,
        bus=Bus(store.metrics),
        catalog=build_catalog(config) if catalog is None else catalog,
        metrics=store.metrics,
        pseudonymizer=Pseudonymizer(config.privacy.card_key.get_secret_value().encode()),
        health=HealthRegistry(clock),
    )


def build_components(runtime: Runtime) -> list[Component]:
    """Components of every enabled section. A section whose factory fails is parked (its health
    says why) and the others still run."""
    components: list[Component] = []
    for section, module_name in COMPONENT_SOURCES:
        if not getattr(getattr(runtime.config, section, None), "enabled", False):
            continue
        try:
            if importlib.util.find_spec(module_name) is None:
                raise ModuleNotFoundError(module_name)
        except ModuleNotFoundError:
            _park(runtime, section, f"`{section}` is enabled but this build has no {module_name}")
            continue
        try:
            module = importlib.import_module(module_name)
            factory = cast(_Factory, module.build_components)
            components.extend(factory(runtime))
        except ConfigurationError as exc:
            _park(runtime, section, str(exc))
        except Exception as exc:
            log.exception("building components failed", extra={"section": section})
            _park(runtime, section, f"building components failed: {exc!r}")
    return components


def _park(runtime: Runtime, name: str, detail: str) -> None:
    runtime.health.set(name, HealthState.PARKED, detail)
    log.error("section parked: %s", detail, extra={"component": name, "event": "parked"})


def freeze_startup_heap() -> None:
    """Exempt what startup built (modules, configuration, catalogue, caches) from the cyclic
    garbage collector: it lives as long as the process, and scanning it again and again costs
    the ingest path 10-20 % (`bench/mqtt_ingest.py`, which calls this as the gateway does)."""
    gc.collect()
    gc.freeze()


async def run_gateway(
    config_path: str | Path, *, stop: asyncio.Event | None = None, clock: Clock | None = None
) -> int:
    """Run the gateway until SIGTERM/SIGINT (or `stop`); return the process exit code."""
    path = Path(config_path)
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(config.log)
    clock = clock or SystemClock()
    stop = stop or asyncio.Event()
    try:
        runtime = await build_runtime(config, path, clock)
    except Exception as exc:
        log.exception("cannot start: %s", exc, extra={"config": str(path)})
        return 1
    supervisor = Supervisor(
        build_components(runtime),
        runtime.health,
        clock,
        on_stopped=[runtime.store.close],
        metrics=runtime.metrics,
    )
    loop = asyncio.get_running_loop()
    installed = _install_signal_handlers(loop, stop)
    # The watchdog pings on real time whatever clock the components use.
    watchdog = asyncio.create_task(sdnotify.watchdog_loop(SystemClock()), name="systemd-watchdog")
    try:
        supervisor.start()
        await asyncio.sleep(0)
        freeze_startup_heap()
        kinds = Counter(str(d.kind) for d in runtime.catalog.devices.values())
        log.info(
            READY_MESSAGE,
            extra={
                "building": config.building.id,
                "components": [c.name for c in supervisor.components],
                "devices": dict(kinds),
                "pid": os.getpid(),
            },
        )
        sdnotify.notify_ready(f"{len(supervisor.components)} components running")
        await stop.wait()
        log.info("stopping")
    finally:
        sdnotify.notify_stopping()
        await supervisor.shutdown()
        watchdog.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
    return 0


def _busy_threads(grace_s: float) -> list[str]:
    """Names of non-daemon threads still alive after `grace_s` (they would block the exit)."""
    deadline = time.monotonic() + grace_s
    busy = []
    for t in threading.enumerate():
        if t is threading.main_thread() or t.daemon:
            continue
        t.join(max(deadline - time.monotonic(), 0.0))
        if t.is_alive():
            busy.append(t.name)
    return busy


def _install_signal_handlers(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
    installed: list[int] = []

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("already stopping", extra={"signal": sig.name})
        else:
            log.info("signal received", extra={"signal": sig.name})
            stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    return installed


def run_blocking(config_path: str | Path) -> int:
    """Run the gateway in a fresh event loop. Tasks that ignored cancellation during shutdown and
    threads still busy (a stuck worker) do not hold the process: they get half a second more,
    then the process exits regardless."""
    loop = asyncio.new_event_loop()
    leftovers: set[asyncio.Task[object]] = set()
    try:
        code = loop.run_until_complete(run_gateway(config_path))
    finally:
        pending = asyncio.all_tasks(loop)
        for t in pending:
            t.cancel()
        if pending:
            _, still = loop.run_until_complete(asyncio.wait(pending, timeout=0.5))
            leftovers = cast(set[asyncio.Task[object]], still)
        loop.close()
    threads = _busy_threads(grace_s=0.5)
    if leftovers or threads:
        log.error(
            "exiting with work still running",
            extra={"tasks": len(leftovers), "threads": threads},
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
