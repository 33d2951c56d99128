"""Readings as columns (numpy): the packed forms the store keeps them in, the canonical form of
a series' readings, and their aggregates. Pure functions; no SQL here.

Canonical form: sorted by (series, time), one reading per (series, time): the first stored
one that is not BAD, or the first BAD one if there is no other. So a re-delivered reading
counts once, and a later good reading of the same time still counts where the first was BAD.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.model import Quality

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
BAD = int(Quality.BAD)

SID = np.dtype("<i8")
TS = np.dtype("<i8")
VAL = np.dtype("<f8")
QUAL = np.dtype("u1")
OFFSET = np.dtype("<u2")
"""Milliseconds after the chunk's minute (< 60,000)."""

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bytes = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Columns:
    """Readings of any series, as parallel arrays."""

    sid: Ints
    ts: Ints
    val: Floats
    qual: Bytes

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: npt.NDArray[Any] | slice) -> Columns:
        """The readings at `index` (positions, a boolean mask or a slice), in that order."""
        return Columns(self.sid[index], self.ts[index], self.val[index], self.qual[index])

    @staticmethod
    def of(sid: list[int], ts: list[int], val: list[float], qual: list[int]) -> Columns:
        return Columns(
            np.array(sid, SID), np.array(ts, TS), np.array(val, VAL), np.array(qual, QUAL)
        )

    @staticmethod
    def concat(parts: list[Columns]) -> Columns:
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return EMPTY
        return Columns(
            np.concatenate([p.sid for p in parts]),
            np.concatenate([p.ts for p in parts]),
            np.concatenate([p.val for p in parts]),
            np.concatenate([p.qual for p in parts]),
        )

    def buckets(self, width_ms: int) -> Ints:
        return self.ts - self.ts % width_ms

    # -- the log's packed form: one row per transaction and minute --------------------------

    def log_blobs(self) -> tuple[bytes, bytes, bytes, bytes]:
        return (
            self.sid.astype(SID, copy=False).tobytes(),
            self.ts.astype(TS, copy=False).tobytes(),
            self.val.astype(VAL, copy=False).tobytes(),
            self.qual.astype(QUAL, copy=False).tobytes(),
        )

    @staticmethod
    def from_log(sid: bytes, ts: bytes, val: bytes, qual: bytes) -> Columns:
        return Columns(
            np.frombuffer(sid, SID).astype(np.int64, copy=False),
            np.frombuffer(ts, TS).astype(np.int64, copy=False),
            np.frombuffer(val, VAL).astype(np.float64, copy=False),
            np.frombuffer(qual, QUAL),
        )

    # -- the chunk's packed form: one row per series and minute, canonical ------------------

    @staticmethod
    def from_chunks(sid: int, rows: list[tuple[int, int, bytes, bytes, bytes]]) -> Columns:
        """Readings of series `sid` from its chunks' (bucket_ms, n, offsets, val, qual)."""
        if not rows:
            return EMPTY
        buckets, ns, offsets, val, qual = zip(*rows, strict=True)
        ts = np.frombuffer(b"".join(offsets), OFFSET).astype(np.int64)
        ts += np.repeat(np.array(buckets, np.int64), ns)
        return Columns(
            np.full(len(ts), sid, np.int64),
            ts,
            np.frombuffer(b"".join(val), VAL).astype(np.float64, copy=False),
            np.frombuffer(b"".join(qual), QUAL),
        )


EMPTY = Columns(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0, np.uint8))


def canonical(c: Columns) -> Columns:
    """`c` (in the order stored) in canonical form: see the module's docstring."""
    if len(c) == 0:
        return c
    order = np.lexsort((c.qual >= BAD, c.ts, c.sid))  # stable: ties keep the stored order
    s = c.take(order)
    first = np.ones(len(s), bool)
    first[1:] = (s.sid[1:] != s.sid[:-1]) | (s.ts[1:] != s.ts[:-1])
    return s if first.all() else s.take(first)


def group_starts(c: Columns, width_ms: int) -> Ints:
    """Where each (series, bucket) group of canonical `c` starts."""
    if len(c) == 0:
        return np.empty(0, np.int64)
    b = c.buckets(width_ms)
    new = np.ones(len(c), bool)
    new[1:] = (c.sid[1:] != c.sid[:-1]) | (b[1:] != b[:-1])
    return np.flatnonzero(new)


@dataclass(frozen=True, slots=True)
class Aggregates:
    """Per (series, bucket): count, min, max, sum, and the value at the latest time."""

    sid: Ints
    bucket: Ints
    n: Ints
    vmin: Floats
    vmax: Floats
    vsum: Floats
    last_ts: Ints
    vlast: Floats

    def __len__(self) -> int:
        return len(self.n)

    def rows(self) -> list[tuple[int, int, int, float, float, float, int, float]]:
        """(series_id, bucket_ms, n, vmin, vmax, vsum, last_ts_ms, vlast), as stored."""
        return list(
            zip(
                self.sid.tolist(),
                self.bucket.tolist(),
                self.n.tolist(),
                self.vmin.tolist(),
                self.vmax.tolist(),
                self.vsum.tolist(),
                self.last_ts.tolist(),
                self.vlast.tolist(),
                strict=True,
            )
        )


def aggregate(c: Columns, width_ms: int) -> Aggregates:
    """Aggregates of canonical `c` per (series, bucket of `width_ms`); BAD readings left out."""
    g = c.take(c.qual < BAD)
    starts = group_starts(g, width_ms)
    if len(starts) == 0:
        e = np.empty(0, np.int64)
        f = np.empty(0)
        return Aggregates(e, e, e, f, f, f, e, f)
    ends = np.append(starts[1:], len(g))
    last = ends - 1
    return Aggregates(
        sid=g.sid[starts],
        bucket=g.buckets(width_ms)[starts],
        n=ends - starts,
        vmin=np.minimum.reduceat(g.val, starts),
        vmax=np.maximum.reduceat(g.val, starts),
        vsum=np.add.reduceat(g.val, starts),
        last_ts=g.ts[last],
        vlast=g.val[last],
    )


ChunkRow = tuple[int, int, int, bytes, bytes, bytes]
"""(bucket_ms, series_id, n, offsets, val, qual) of `reading_chunks`."""


def chunk_rows(c: Columns, bucket_ms: int) -> list[ChunkRow]:
    """One packed row per series of canonical `c`, all of the minute `bucket_ms`."""
    starts = group_starts(c, MINUTE_MS)
    if len(starts) == 0:
        return []
    offsets = (c.ts - bucket_ms).astype(OFFSET)
    val = c.val.astype(VAL, copy=False)
    qual = c.qual
    sids = c.sid[starts].tolist()
    bounds = np.append(starts, len(c)).tolist()
    return [
        (bucket_ms, sid, b - a, offsets[a:b].tobytes(), val[a:b].tobytes(), qual[a:b].tobytes())
        for sid, (a, b) in zip(sids, itertools.pairwise(bounds), strict=True)
    ]
