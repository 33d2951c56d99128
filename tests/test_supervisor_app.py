"""The assembled gateway: runtime, lazily imported factories, shutdown with a real store."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import app
from gateway.clock import SystemClock
from gateway.config.loader import load_config
from gateway.metrics import Metrics
from gateway.runtime import HealthState
from gateway.storage.store import Store
from tests.fixtures.gateway_proc import CARD_KEY, GatewayFactory, write_config
from tests.fixtures.net import await_until

FAKES = {
    "ce_fake_rules": """
        import asyncio
        from gateway.model import Event
        from gateway.runtime import Stage
        from gateway.storage.batch import WriteBatch

        ORDER = []
        STARTED = asyncio.Event()

        class Committer:
            name = "committer"
            stage = Stage.INGEST

            def __init__(self, runtime):
                self.runtime = runtime

            async def run(self):
                STARTED.set()
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    # what arrived just before shutdown is committed in the cancellation path
                    await asyncio.sleep(0.05)
                    event = Event("g1:1", "g1", "gate.pass", 1_000, 1_001)
                    await self.runtime.store.commit(WriteBatch(events=[event]))
                    raise

        def build_components(runtime):
            ORDER.append("rules")
            runtime.alert_service = "set by rules"
            return [Committer(runtime)]
    """,
    "ce_fake_second": """
        from ce_fake_rules import ORDER

        def build_components(runtime):
            ORDER.append(("second", runtime.alert_service))
            return []
    """,
    "ce_fake_parked": """
        from gateway.runtime import ConfigurationError

        def build_components(runtime):
            raise ConfigurationError("rules.residents[0].room: no such room 9999")
    """,
    "ce_fake_broken": """
        def build_components(runtime):
            raise RuntimeError("factory bug")
    """,
    "ce_fake_never": """
        raise AssertionError("a disabled section's module must not be imported")
    """,
}


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "fakes"
    root.mkdir()
    for name, source in FAKES.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(root))
    for name in FAKES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    return root


async def test_build_runtime_opens_everything(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    runtime = await app.build_runtime(load_config(path), path, SystemClock())
    try:
        assert isinstance(runtime.store, Store)
        assert runtime.catalog.building == "t01"
        assert runtime.config_path == path
        card = runtime.pseudonymizer.card("20231234567")
        assert card.startswith("p:")
        assert "20231234567" not in card
        assert runtime.alert_service is None
        assert runtime.health.components == {}
    finally:
        await runtime.store.close()


async def test_components_are_built_in_order_only_for_enabled_sections(
    tmp_path: Path, fakes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        app,
        "COMPONENT_SOURCES",
        (
            ("rules", "ce_fake_rules"),
            ("rules", "ce_fake_second"),
            ("mqtt", "ce_fake_never"),
            ("rules", "ce_fake_parked"),
            ("storage", "ce_fake_broken"),  # storage has no `enabled`: never built
            ("rules", "ce_fake_missing_module"),
        ),
    )
    path = write_config(tmp_path, {"rules": {"enabled": True}, "mqtt": {"enabled": False}})
    runtime = await app.build_runtime(load_config(path), path, SystemClock())
    try:
        components = app.build_components(runtime)
        assert [c.name for c in components] == ["committer"]
        assert sys.modules["ce_fake_rules"].ORDER == ["rules", ("second", "set by rules")]
        assert "ce_fake_never" not in sys.modules
        assert "ce_fake_broken" not in sys.modules
        rules = runtime.health.components["rules"]
        assert rules.state is HealthState.PARKED
        assert "this build has no ce_fake_missing_module" in rules.detail
    finally:
        await runtime.store.close()


async def test_factory_errors_park_the_section(
    tmp_path: Path, fakes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "COMPONENT_SOURCES", (("rules", "ce_fake_parked"),))
    path = write_config(tmp_path, {"rules": {"enabled": True}})
    runtime = await app.build_runtime(load_config(path), path, SystemClock())
    try:
        assert app.build_components(runtime) == []
        health = runtime.health.components["rules"]
        assert health.state is HealthState.PARKED
        assert health.detail == "rules.residents[0].room: no such room 9999"
        monkeypatch.setattr(app, "COMPONENT_SOURCES", (("rules", "ce_fake_broken"),))
        assert app.build_components(runtime) == []
        assert "factory bug" in runtime.health.components["rules"].detail
    finally:
        await runtime.store.close()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_run_gateway_commits_in_cancellation_path_before_the_store_closes(
    tmp_path: Path, fakes: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    monkeypatch.setattr(app, "COMPONENT_SOURCES", (("rules", "ce_fake_rules"),))
    path = write_config(tmp_path, {"rules": {"enabled": True}, "log": {"format": "console"}})
    stop = asyncio.Event()
    task = asyncio.create_task(app.run_gateway(path, stop=stop))
    fake = None

    async def started() -> bool:
        nonlocal fake
        fake = sys.modules.get("ce_fake_rules")
        return fake is not None and fake.STARTED.is_set()

    await await_until(started, what="the fake component to start")
    stop.set()
    began = time.monotonic()
    assert await asyncio.wait_for(task, 10.0) == 0
    assert time.monotonic() - began < 10.0
    config = load_config(path)
    store = await Store.open(config.storage, SystemClock(), Metrics())
    try:
        stored = await store.events(device="g1")
        assert [s.event.id for s in stored] == ["g1:1"]
    finally:
        await store.close()


async def test_run_gateway_with_a_bad_file_returns_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"building: {{id: t01}}\nprivacy: {{card_key: {CARD_KEY}}}\nmqtt: 3\n")
    assert await app.run_gateway(path) == 2
    assert f"{path}:3: mqtt:" in capsys.readouterr().err


def test_sigterm_stops_the_gateway_process_within_10_s(gateway_proc: GatewayFactory) -> None:
    gw = gateway_proc()
    ready = gw.wait_for(lambda r: r.get("msg") == "gateway ready")
    assert ready["building"] == "t01"
    assert {"ts", "level", "logger"} <= set(ready)
    began = time.monotonic()
    assert gw.stop() == 0
    assert time.monotonic() - began < 10.0
    messages = [r["msg"] for r in gw.records()]
    assert messages.index("signal received") < messages.index("shutdown complete")
    assert "exiting with work still running" not in messages, "a normal stop leaves nothing behind"
    assert not [r for r in gw.records() if r["level"] in ("error", "critical")]


def test_sigint_also_stops_it_cleanly(gateway_proc: GatewayFactory) -> None:
    gw = gateway_proc()
    assert gw.proc is not None
    gw.proc.send_signal(signal.SIGINT)
    assert gw.proc.wait(10.0) == 0


def test_gateway_process_without_cameras_never_imports_cv2(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"cameras": {"enabled": False}})
    code = textwrap.dedent(
        f"""
        import asyncio, sys
        from gateway.app import run_gateway

        async def main():
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(0.5, stop.set)
            return await run_gateway({str(path)!r}, stop=stop)

        code = asyncio.run(main())
        print("cv2" in sys.modules, code)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False 0"


def test_a_component_stuck_in_shutdown_does_not_hold_the_process(tmp_path: Path) -> None:
    fake = tmp_path / "ce_fake_stuck.py"
    fake.write_text(
        textwrap.dedent(
            """
            import asyncio, time
            from gateway.runtime import Stage

            class Stuck:
                name = "stuck"
                stage = Stage.OUTPUT

                async def run(self):
                    while True:
                        try:
                            await asyncio.sleep(3600)
                        except asyncio.CancelledError:
                            pass  # ignores every cancellation

            class Blocked:
                name = "blocked"
                stage = Stage.INGEST

                async def run(self):
                    await asyncio.to_thread(time.sleep, 60)  # a worker thread that hangs

            def build_components(runtime):
                return [Stuck(), Blocked()]
            """
        )
    )
    path = write_config(tmp_path, {"rules": {"enabled": True}})
    code = textwrap.dedent(
        f"""
        import os, signal, sys, threading, time
        sys.path.insert(0, {str(tmp_path)!r})
        from gateway import app
        app.COMPONENT_SOURCES = (("rules", "ce_fake_stuck"),)

        def terminate():
            print("SIGTERM at", time.time(), file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Timer(1.0, terminate).start()
        sys.exit(app.run_blocking({str(path)!r}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    ended = time.time()
    assert done.returncode == 0, done.stderr
    sent = float(done.stderr.split("SIGTERM at ", 1)[1].split()[0])
    assert "component did not stop in time; abandoned" in done.stderr
    assert "shutdown complete" in done.stderr
    assert "exiting with work still running" in done.stderr
    assert ended - sent < 10.0
