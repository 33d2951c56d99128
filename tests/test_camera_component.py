"""The camera component end to end: a real capture process per camera, the watchdog on a
stream that stalls mid-way and on one that never starts, events and snapshots committed to
the real store, and snapshot retention."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from collectors.camera import snapshots
from collectors.camera.component import CameraRunner, SnapshotRetention, build_components
from collectors.camera.messages import CamEvent, CamReading, Report
from gateway.app import assemble_runtime
from gateway.bus import Stream
from gateway.clock import Clock, ManualClock, SystemClock
from gateway.config.cameras import CameraConfig, TamperConfig
from gateway.config.root import GatewayConfig
from gateway.model import DeviceStatus
from gateway.runtime import Runtime
from gateway.storage.store import Store
from simulators.camera.clip import mjpeg_server, write_clip
from simulators.camera.scene import SceneSpec, TamperSpec
from tests.fixtures.net import await_until
from tests.fixtures.store import open_store

SMALL: dict[str, Any] = {"width": 160, "height": 120, "fps": 10.0}
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


def _runtime(store: Store, clock: Clock, tmp_path: Path, **cameras: Any) -> Runtime:
    config = GatewayConfig.model_validate(
        {
            "building": {"id": "b07"},
            "privacy": {"card_key": "k" * 16},
            "storage": {"path": str(tmp_path / "store.sqlite")},
            "cameras": {"enabled": True, "snapshot_dir": str(tmp_path / "snaps"), **cameras},
        }
    )
    return assemble_runtime(config, store, clock)


@contextlib.asynccontextmanager
async def _running(runner: CameraRunner) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout(15):  # a runner that ignores cancellation fails here
                await task
        assert not [p for p in multiprocessing.active_children() if "camera" in p.name]


async def _next_status(sub: Any, timeout: float) -> DeviceStatus:
    item = await asyncio.wait_for(sub.get(), timeout)
    assert isinstance(item, DeviceStatus)
    return item


async def test_watchdog_reports_a_stream_that_stalls_midway_and_reopens(tmp_path: Path) -> None:
    # Frames for 4 s, then the connection stays open and nothing comes (the nasty case).
    spec = SceneSpec(seed=3, duration_s=60.0, outages=((4.0, 60.0),), **SMALL)
    server = mjpeg_server(spec, loop=False).start()
    stalls_at_ms = round(time.time() * 1000) + 4000
    cam = CameraConfig(
        id="cam-a",
        url=server.url,
        stall_s=2.0,
        open_timeout_s=6.0,
        reopen_min_s=0.5,
        reopen_max_s=1.0,
    )
    try:
        async with open_store(tmp_path, SystemClock()) as store:
            rt = _runtime(store, SystemClock(), tmp_path)
            statuses = rt.bus.subscribe(Stream.STATUS, "test")
            runner = CameraRunner(rt, cam, tmp_path / "snaps")
            async with _running(runner):
                up = await _next_status(statuses, 30)
                assert up.online
                assert up.device == "cam-a"
                down = await _next_status(statuses, 30)
                assert not down.online
                assert "stalled" in down.detail["reason"]
                assert down.ts_ms - stalls_at_ms < 10_000  # noticed within 10 s
                lost = await store.events(device="cam-a", kind_prefix="camera.stream_lost")
                assert len(lost) == 1
                assert lost[0].event.data["reason"] == down.detail["reason"]
                await await_until(_reconnected(server), timeout=30, what="a reconnection")
                assert runner.reopens >= 1
    finally:
        server.stop()


def _reconnected(server: Any) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bool(server.connections >= 2)

    return check


async def test_watchdog_reports_a_stream_that_never_starts(tmp_path: Path) -> None:
    server = mjpeg_server(SceneSpec(seed=4, **SMALL), never_start=True).start()
    # The watchdog (3 s) acts before FFmpeg's own open timeout (5 s) would: the process is
    # killed while OpenCV is still blocked opening the stream.
    cam = CameraConfig(
        id="cam-b",
        url=server.url,
        stall_s=2.0,
        open_timeout_s=3.0,
        reopen_min_s=0.5,
        reopen_max_s=1.0,
    )
    try:
        async with open_store(tmp_path, SystemClock()) as store:
            rt = _runtime(store, SystemClock(), tmp_path)
            statuses = rt.bus.subscribe(Stream.STATUS, "test")
            runner = CameraRunner(rt, cam, tmp_path / "snaps")
            started = time.monotonic()
            async with _running(runner):
                down = await _next_status(statuses, 30)
                assert not down.online
                assert "never started" in down.detail["reason"]
                assert time.monotonic() - started < 10  # reported within 10 s
                await await_until(_reconnected(server), timeout=30, what="a reconnection")
    finally:
        server.stop()


async def test_tamper_from_a_video_file_is_committed_with_its_snapshot(tmp_path: Path) -> None:
    clip = tmp_path / "tamper.avi"
    write_clip(
        SceneSpec(seed=5, duration_s=9.0, tampers=(TamperSpec("cover", 3.0, 9.0),), **SMALL), clip
    )
    cam = CameraConfig(
        id="cam-c",
        url=str(clip),
        realtime=False,
        learn_s=1.0,
        tamper=TamperConfig(persist_s=1.0, clear_s=1.0),
    )
    async with open_store(tmp_path, SystemClock()) as store:
        rt = _runtime(store, SystemClock(), tmp_path)
        events = rt.bus.subscribe(Stream.EVENTS, "test")
        runner = CameraRunner(rt, cam, tmp_path / "snaps")
        async with _running(runner):
            deadline = time.monotonic() + 60
            seen = []
            while time.monotonic() < deadline:
                ev = await asyncio.wait_for(events.get(), 60)
                seen.append(ev.kind)
                if ev.kind == "camera.tamper":
                    break
            assert ev.kind == "camera.tamper", seen
        assert ev.device == "cam-c"
        assert dict(ev.data) | {"type": "covered", "state": "on"} == dict(ev.data)
        shot = await snapshots.read_snapshot(store, ev.id)
        assert shot is not None
        assert shot[:2] == b"\xff\xd8"
        stored = await store.events(device="cam-c", kind_prefix="camera.tamper")
        assert [s.event.id for s in stored] == [ev.id]


async def test_snapshots_are_kept_then_deleted_by_retention(tmp_path: Path) -> None:
    clock = ManualClock(start_ms=1_790_000_000_000)
    async with open_store(tmp_path, clock) as store:
        rt = _runtime(store, clock, tmp_path)
        runner = CameraRunner(rt, CameraConfig(id="cam-d", url="x.avi"), tmp_path / "snaps")
        old_ts = clock.now_ms()
        await runner._commit_report(
            Report(
                events=[
                    CamEvent("camera.crowding", old_ts, {"zone": "z", "state": "on"}, JPEG),
                    CamEvent("camera.motion", old_ts, {"region": "r", "state": "on"}),
                ],
                readings=[CamReading("occupancy.z", old_ts, 16.0)],
            )
        )
        clock.advance(20 * 86_400)
        await runner._commit_report(
            Report(events=[CamEvent("camera.tamper", clock.now_ms(), {"type": "covered"}, JPEG)])
        )
        stored = await store.events(device="cam-d")
        ids = {s.event.kind: s.event.id for s in stored}
        assert await snapshots.read_snapshot(store, ids["camera.crowding"]) == JPEG
        assert await snapshots.read_snapshot(store, ids["camera.motion"]) is None
        files = sorted((tmp_path / "snaps").rglob("*.jpg"))
        assert len(files) == 2
        clock.advance(15 * 86_400)  # the first is now 35 days old, the second 15
        retention = SnapshotRetention(rt, tmp_path / "snaps")
        task = asyncio.create_task(retention.run())
        try:
            await await_until(lambda: _gone(store, ids["camera.crowding"]), what="the purge")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert await snapshots.read_snapshot(store, ids["camera.tamper"]) == JPEG
        assert sorted((tmp_path / "snaps").rglob("*.jpg")) == [files[1]]
        # Events themselves stay (their own retention is the store's business).
        assert len(await store.events(device="cam-d")) == 3


async def _gone(store: Store, event_id: str) -> bool:
    return await snapshots.read_snapshot(store, event_id) is None


async def test_components_only_when_enabled(tmp_path: Path) -> None:
    clock = ManualClock()
    async with open_store(tmp_path, clock) as store:
        rt = _runtime(store, clock, tmp_path, cameras=[{"id": "cam-e", "url": "a.avi"}])
    names = [c.name for c in build_components(rt)]
    assert names == ["camera.cam-e", "camera.snapshots"]
    rt.config = rt.config.model_copy(
        update={"cameras": rt.config.cameras.model_copy(update={"enabled": False})}
    )
    assert build_components(rt) == []
    infos = rt.config.cameras.catalog_entries()
    assert [i.id for i in infos] == ["cam-e"]


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
