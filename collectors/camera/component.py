"""The cameras in the gateway: one capture process per camera, watched from the event loop.

Each camera's decoding and analysis run in a process of its own (multiprocessing, `spawn`):
OpenCV's read can block for ever on a dead stream, and only a process can be killed
whatever it is blocked in. The gateway side (this module, no OpenCV) reads the process's
reports from a pipe, commits them to the store (events with their snapshots, readings,
device status), then publishes them; its watchdog declares the stream lost when no frame
arrived for `stall_s`, kills the process, and reopens with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from collectors.camera import snapshots, worker
from collectors.camera.messages import Failed, Opened, Progress, Report
from gateway.bus import Stream
from gateway.config.cameras import CameraConfig
from gateway.model import DeviceStatus, Event, Reading
from gateway.runtime import Component, HealthState, Runtime, Stage
from gateway.storage.batch import WriteBatch

QUEUE_MAX = 64
KILL_GRACE_S = 2.0
HEALTHY_RESET_S = 60.0


class _Eof:
    pass


@dataclass(slots=True)
class _Pipe:
    """Messages from a capture process, read by the event loop when the pipe is readable.
    The queue is bounded: when it is full the loop stops reading, the pipe fills, the
    process blocks on sending and its grabber skips (and counts) frames meanwhile."""

    conn: Connection
    queue: asyncio.Queue[Any]
    loop: asyncio.AbstractEventLoop
    reading: bool = False
    eof: bool = False

    def start(self) -> None:
        self.loop.add_reader(self.conn.fileno(), self._readable)
        self.reading = True

    def stop(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.conn.fileno())
            self.reading = False

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                self.queue.put_nowait(self.conn.recv())
                if self.queue.full():
                    self.stop()
                    return
        except (EOFError, OSError):
            self.eof = True
            self.stop()
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(_Eof())

    async def get(self, wait_s: float) -> Any:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # races with the item arriving, and the runner would then never stop.
        try:
            async with asyncio.timeout(wait_s):
                item = await self.queue.get()
        except TimeoutError:
            return _Eof() if self.eof and self.queue.empty() else None
        if not self.reading and not self.eof and self.queue.qsize() <= QUEUE_MAX // 2:
            self.start()
        return item


class CameraRunner:
    """One camera: runs its capture process, reports its stream state and its analysis."""

    stage = Stage.INGEST

    def __init__(self, runtime: Runtime, cam: CameraConfig, snapshot_root: Path) -> None:
        self.runtime = runtime
        self.cam = cam
        self.name = f"camera.{cam.id}"
        self.snapshot_root = snapshot_root
        self.online: bool | None = None
        self.lost_since_ms: int | None = None
        self.reopens = 0
        self._seq = 0
        self._frames = 0
        self._skipped = 0

    async def run(self) -> None:
        clock = self.runtime.clock
        backoff = self.cam.reopen_min_s
        while True:
            self.runtime.health.set(self.name, HealthState.STARTING, "opening")
            started = clock.monotonic()
            reason = await self._session()
            if clock.monotonic() - started >= HEALTHY_RESET_S:
                backoff = self.cam.reopen_min_s
            await self._set_online(False, reason)
            self.runtime.health.set(self.name, HealthState.DEGRADED, reason)
            self.reopens += 1
            self.runtime.metrics.inc(
                "camera_reopens_total", camera=self.cam.id, help_="Camera streams reopened"
            )
            await clock.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.cam.reopen_max_s)

    # -- one capture process -------------------------------------------------------------------
    async def _session(self) -> str:
        cfg = self.runtime.config.cameras
        ctx = multiprocessing.get_context("spawn")
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=worker.run,
            args=(self.cam.model_dump_json(), cfg.snapshot_width, cfg.snapshot_quality, send),
            name=f"campus-edge-{self.name}",
            daemon=True,
        )
        proc.start()
        send.close()
        pipe = _Pipe(recv, asyncio.Queue(QUEUE_MAX), asyncio.get_running_loop())
        pipe.start()
        self._frames = self._skipped = 0
        try:
            return await self._watch(pipe)
        finally:
            pipe.stop()
            await asyncio.shield(asyncio.to_thread(_stop_process, proc))
            recv.close()

    async def _watch(self, pipe: _Pipe) -> str:
        clock = self.runtime.clock
        started = last_frame = clock.monotonic()
        seen_frame = False
        while True:
            msg = await pipe.get(0.25)
            now = clock.monotonic()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            if isinstance(msg, _Eof):
                return "capture process ended"
            if isinstance(msg, Failed):
                return msg.reason
            if isinstance(msg, Opened):
                last_frame = now
            elif isinstance(msg, Report):
                last_frame = now
                seen_frame = True
                await self._set_online(True, "")
                await self._commit_report(msg)
            elif isinstance(msg, Progress):
                last_frame = max(last_frame, now - msg.last_frame_age_s)
                if msg.frames > 0 and msg.last_frame_age_s < self.cam.stall_s:
                    seen_frame = True
                    await self._set_online(True, "")
                self._progress(msg)
            if seen_frame and now - last_frame > self.cam.stall_s:
                return f"stream stalled: no frame for {self.cam.stall_s:g} s"
            if not seen_frame and now - started > self.cam.open_timeout_s:
                return f"stream never started: no frame within {self.cam.open_timeout_s:g} s"

    def _progress(self, p: Progress) -> None:
        m, cam = self.runtime.metrics, self.cam.id
        m.inc("camera_frames_total", p.frames - self._frames, camera=cam, help_="Frames decoded")
        m.inc(
            "camera_frames_skipped_total",
            p.skipped - self._skipped,
            camera=cam,
            help_="Frames decoded but not analysed (analysis busy or above the configured rate)",
        )
        self._frames, self._skipped = p.frames, p.skipped
        m.set("camera_analysis_ms", p.analysis_ms, camera=cam, help_="Mean analysis time per frame")
        self.runtime.health.set(self.name, HealthState.RUNNING, f"{p.analysed} frames analysed")

    # -- output ----------------------------------------------------------------------------------
    def _event_id(self, kind: str, ts_ms: int) -> str:
        self._seq += 1
        return f"{self.cam.id}:{kind.removeprefix('camera.')}:{ts_ms}:{self._seq}"

    async def _commit_report(self, report: Report) -> None:
        rt = self.runtime
        now = rt.clock.now_ms()
        batch = WriteBatch()
        for ev in report.events:
            event = Event(
                self._event_id(ev.kind, ev.ts_ms), self.cam.id, ev.kind, ev.ts_ms, now, ev.data
            )
            if ev.snapshot is not None:
                path = await asyncio.to_thread(
                    snapshots.write_file,
                    self.snapshot_root,
                    self.cam.id,
                    event.id,
                    ev.ts_ms,
                    ev.snapshot,
                )
                row = snapshots.row(event.id, self.cam.id, ev.ts_ms, path, len(ev.snapshot))
                batch.sql.append((snapshots.INSERT, [row]))
            batch.events.append(event)
        batch.readings = [Reading(self.cam.id, r.metric, r.ts_ms, r.value) for r in report.readings]
        await self._commit_and_publish(batch)

    async def _commit_and_publish(self, batch: WriteBatch) -> None:
        rt = self.runtime
        result = await rt.store.commit(batch)
        new = [e for e, fresh in zip(batch.events, result.new_events, strict=False) if fresh]
        if len(result.new_events) != len(batch.events):
            new = list(batch.events)
        if batch.statuses:
            await rt.bus.publish_many(Stream.STATUS, batch.statuses)
        if new:
            await rt.bus.publish_many(Stream.EVENTS, new)
        if batch.readings:
            await rt.bus.publish_many(Stream.READINGS, batch.readings)

    async def _set_online(self, online: bool, reason: str) -> None:
        if self.online is online:
            return
        was = self.online
        self.online = online
        now = self.runtime.clock.now_ms()
        self.runtime.metrics.set(
            "camera_online", 1.0 if online else 0.0, camera=self.cam.id, help_="1 while streaming"
        )
        detail: dict[str, Any] = {"reason": reason} if reason else {}
        batch = WriteBatch(statuses=[DeviceStatus(self.cam.id, now, online, detail=detail)])
        if not online:
            self.lost_since_ms = now
            data = {"reason": reason, "reopens": self.reopens}
            kind = "camera.stream_lost"
            batch.events.append(Event(self._event_id(kind, now), self.cam.id, kind, now, now, data))
        elif was is False and self.lost_since_ms is not None:
            kind = "camera.stream_back"
            data = {"down_s": round((now - self.lost_since_ms) / 1000, 1)}
            batch.events.append(Event(self._event_id(kind, now), self.cam.id, kind, now, now, data))
        await self._commit_and_publish(batch)


def _stop_process(proc: multiprocessing.process.BaseProcess) -> None:
    if proc.is_alive():
        proc.terminate()
        proc.join(KILL_GRACE_S)
    if proc.is_alive():
        proc.kill()
    proc.join(KILL_GRACE_S)
    with contextlib.suppress(ValueError):
        proc.close()


class SnapshotRetention:
    """Deletes snapshots past `storage.retention.snapshots_days`, every retention interval."""

    name = "camera.snapshots"
    stage = Stage.INGEST

    def __init__(self, runtime: Runtime, root: Path) -> None:
        self.runtime = runtime
        self.root = root

    async def run(self) -> None:
        storage = self.runtime.config.storage
        while True:
            n = await snapshots.purge(
                self.runtime.store,
                self.root,
                self.runtime.clock.now_ms(),
                storage.retention.snapshots_days,
            )
            if n:
                self.runtime.metrics.inc(
                    "camera_snapshots_purged_total", n, help_="Snapshots deleted by retention"
                )
            self.runtime.health.set(self.name, HealthState.RUNNING)
            await self.runtime.clock.sleep(storage.retention_interval_s)


def build_components(runtime: Runtime) -> list[Component]:
    cfg = runtime.config.cameras
    if not cfg.enabled:
        return []
    root = snapshots.snapshot_dir(runtime.config)
    out: list[Component] = [CameraRunner(runtime, cam, root) for cam in cfg.cameras if cam.enabled]
    out.append(SnapshotRetention(runtime, root))
    return out
