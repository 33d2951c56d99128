"""Alarm snapshots: JPEG files on the gateway, linked to their event, under retention.

Frames are otherwise never stored or sent. The file is written before the event is committed,
and the row (table `camera_snapshots`, migration 0040) in the same transaction as the event,
so a committed event's snapshot is always on disk; a crash between the two leaves at most an
orphan file, which `purge` removes once it is past retention.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
from pathlib import Path

from gateway.config.root import GatewayConfig
from gateway.storage.batch import SqlParams, WriteBatch
from gateway.storage.store import Store

INSERT = (
    "INSERT OR IGNORE INTO camera_snapshots (event_id, device, ts_ms, path, bytes)"
    " VALUES (?, ?, ?, ?, ?)"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
DAY_MS = 86_400_000


def snapshot_dir(config: GatewayConfig) -> Path:
    """Where snapshots live: `cameras.snapshot_dir`, else `snapshots/` next to the database."""
    configured = config.cameras.snapshot_dir
    return configured if configured is not None else config.storage.path.parent / "snapshots"


def _file_for(root: Path, device: str, event_id: str, ts_ms: int) -> Path:
    day = time.strftime("%Y%m%d", time.gmtime(ts_ms / 1000))
    return root / _UNSAFE.sub("_", device) / day / (_UNSAFE.sub("_", event_id) + ".jpg")


def write_file(root: Path, device: str, event_id: str, ts_ms: int, jpeg: bytes) -> Path:
    """Writes the JPEG atomically (temp file, fsync, rename) and returns its absolute path."""
    path = _file_for(root, device, event_id, ts_ms).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(jpeg)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def row(event_id: str, device: str, ts_ms: int, path: Path, size: int) -> SqlParams:
    return (event_id, device, ts_ms, str(path), size)


async def read_snapshot(store: Store, event_id: str) -> bytes | None:
    """The JPEG kept for a camera event, or None when there is none (or it was purged)."""
    return await find_snapshot(store, event_id=event_id)


async def find_snapshot(
    store: Store,
    *,
    event_id: str | None = None,
    device: str | None = None,
    since_ms: int = 0,
    until_ms: int = 0,
) -> bytes | None:
    """The JPEG of `event_id` if it has one, else the newest of `device` taken in
    [since_ms, until_ms] (an alert from a camera's readings points at no single event)."""

    def find(conn: sqlite3.Connection) -> str | None:
        if event_id is not None:
            got = conn.execute(
                "SELECT path FROM camera_snapshots WHERE event_id = ?", (event_id,)
            ).fetchone()
            if got is not None:
                return str(got[0])
        if device is None:
            return None
        got = conn.execute(
            "SELECT path FROM camera_snapshots WHERE device = ? AND ts_ms BETWEEN ? AND ?"
            " ORDER BY ts_ms DESC LIMIT 1",
            (device, since_ms, until_ms),
        ).fetchone()
        return None if got is None else str(got[0])

    path = await store.read(find)
    if path is None:
        return None
    try:
        return await asyncio.to_thread(Path(path).read_bytes)
    except FileNotFoundError:
        return None


async def purge(store: Store, root: Path, now_ms: int, days: int) -> int:
    """Deletes snapshots older than `days` (rows and files), and orphan files that old.
    Returns how many snapshots went."""
    cutoff = now_ms - days * DAY_MS

    def scan(conn: sqlite3.Connection) -> tuple[list[tuple[str, str]], set[str]]:
        rows = conn.execute("SELECT event_id, path, ts_ms FROM camera_snapshots").fetchall()
        old = [(str(r[0]), str(r[1])) for r in rows if r[2] < cutoff]
        keep = {str(r[1]) for r in rows if r[2] >= cutoff}
        return old, keep

    doomed, keep = await store.read(scan)
    if doomed:
        await store.commit(
            WriteBatch(
                sql=[("DELETE FROM camera_snapshots WHERE event_id = ?", [(e,) for e, _ in doomed])]
            )
        )
    await asyncio.to_thread(_remove_files, [Path(p) for _, p in doomed], keep, root, cutoff)
    return len(doomed)


def _remove_files(paths: list[Path], keep: set[str], root: Path, cutoff_ms: int) -> None:
    for p in paths:
        p.unlink(missing_ok=True)
    if not root.is_dir():
        return
    for p in list(root.rglob("*")):
        if p.suffix not in (".jpg", ".tmp") or str(p.resolve()) in keep:
            continue
        if p.stat().st_mtime * 1000 < cutoff_ms:  # an orphan: its event was never committed
            p.unlink(missing_ok=True)
    for d in sorted((d for d in root.rglob("*") if d.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
