"""Upstream store-and-forward: drain the store's outbox, in order, to an InfluxDB v2 write API.

The only module that imports `influxdb_client`. One batch at a time: read the next entries after
the cursor, format them (`line_protocol`), send them gzipped, and act on the server's answer:
- accepted (2xx): acknowledge the entries in the outbox;
- rejected as malformed (400, 413, 422): split the batch in halves until the rejected lines are
  isolated, dead-letter each of them with the server's reason, acknowledge, carry on;
- anything else (5xx, 429, 401/403/404, connection errors, timeouts): keep the batch and retry
  after a capped, fully jittered exponential backoff. Nothing is acknowledged before the
  server took it, and points are idempotent, so a resend after an unclear failure does no harm.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.rest import ApiException
from influxdb_client.service.write_service import WriteService

from gateway.clock import Clock
from gateway.config.upstream import UpstreamConfig
from gateway.metrics import Metrics
from gateway.model import DeadLetter, DeviceStatus, Event, Reading
from gateway.runtime import HealthRegistry, HealthState, Stage
from gateway.sinks.line_protocol import LineError, LineFormatter
from gateway.sinks.upstream_backlog import BacklogAlarm
from gateway.storage.batch import CommitResult, WriteBatch
from gateway.storage.records import OutboxEntry, OutboxStatus

log = logging.getLogger(__name__)

MALFORMED = frozenset({400, 413, 422})


class Outbox(Protocol):
    """What the sink needs from the store (`gateway.storage.store.Store` provides it)."""

    async def outbox_read(self, after: int, limit: int) -> list[OutboxEntry]: ...

    async def outbox_ack(self, upto: int) -> int: ...

    async def outbox_backlog(self) -> OutboxStatus: ...

    async def commit(self, batch: WriteBatch) -> CommitResult: ...


@dataclass(frozen=True, slots=True)
class Accepted:
    pass


@dataclass(frozen=True, slots=True)
class Rejected:
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str


WriteOutcome = Accepted | Rejected | Failed


class LineWriter(Protocol):
    def write(self, body: bytes) -> WriteOutcome:
        """Send newline-joined lines (blocking; run in a thread)."""
        ...

    def close(self) -> None: ...


class InfluxWriter:
    """The influxdb-client adapter: one synchronous write per call, no client-side retries."""

    def __init__(self, config: UpstreamConfig) -> None:
        self._config = config
        self._client = InfluxDBClient(
            url=str(config.url).rstrip("/"),
            token=config.token.get_secret_value(),
            org=config.org,
            timeout=int(config.timeout_s * 1000),
            enable_gzip=False,
            retries=False,
        )
        self._service = WriteService(self._client.api_client)  # type: ignore[no-untyped-call]

    def write(self, body: bytes) -> WriteOutcome:
        kwargs: dict[str, Any] = {"content_type": "text/plain; charset=utf-8"}
        if self._config.gzip:
            body = gzip.compress(body, compresslevel=1)
            kwargs["content_encoding"] = "gzip"
        try:
            self._service.post_write(  # type: ignore[no-untyped-call]
                org=self._config.org,
                bucket=self._config.bucket,
                body=body,
                precision="ms",
                **kwargs,
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            reason = _api_reason(exc)
            if status in MALFORMED:
                return Rejected(status, reason)
            return Failed(f"HTTP {status}: {reason}")
        except Exception as exc:  # urllib3 connection errors, timeouts, protocol errors
            return Failed(f"{type(exc).__name__}: {exc}")
        return Accepted()

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


def _api_reason(exc: ApiException) -> str:
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        return str(message or body)[:500]
    return str(exc.reason or "no reason given")


def entry_item(entry: OutboxEntry) -> Reading | Event | None:
    """What an outbox entry carries (None: its event was deleted by retention before)."""
    if entry.reading is not None:
        return entry.reading
    if entry.event is not None:
        return entry.event.event
    return None


def item_device(item: object) -> str | None:
    if isinstance(item, Reading | Event | DeviceStatus):
        return item.device
    return None


def item_ts(item: object) -> int | None:
    if isinstance(item, Reading | Event | DeviceStatus):
        return item.ts_ms
    return None


@dataclass(slots=True)
class _Batch:
    entries: Sequence[OutboxEntry]
    lines: list[str] = field(default_factory=list)
    items: list[object] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    gone: int = 0


class UpstreamSink:
    """The component draining the outbox upstream."""

    stage = Stage.OUTPUT

    def __init__(
        self,
        config: UpstreamConfig,
        *,
        outbox: Outbox,
        formatter: LineFormatter,
        writer: LineWriter,
        clock: Clock,
        metrics: Metrics,
        health: HealthRegistry,
        alarm: BacklogAlarm | None = None,
        name: str = "upstream",
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self._config = config
        self._outbox = outbox
        self._formatter = formatter
        self._writer = writer
        self._clock = clock
        self._metrics = metrics
        self._health = health
        self._alarm = alarm
        self._rng = rng or random.Random()
        self._cursor = 0
        self._failures = 0
        self._write_problem: str | None = None

    async def run(self) -> None:
        self._write_problem = None
        self._refresh_health()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._watch_backlog(), name=f"{self.name}.backlog")
                tg.create_task(self._drain(), name=f"{self.name}.drain")
        finally:
            await asyncio.to_thread(self._writer.close)

    async def drain_once(self) -> int:
        """Forward the next batch (retrying until the server answers); entries handled."""
        batch = await self._prepare(self._cursor)
        if batch is None:
            self._caught_up()
            return 0
        await self._forward(batch)
        return len(batch.entries)

    async def _drain(self) -> None:
        # The next batch is read and formatted while the current one is on the wire; entries
        # are still acknowledged strictly in order, one batch after the other.
        upcoming = asyncio.ensure_future(self._prepare(self._cursor))
        try:
            while True:
                batch = await upcoming
                if batch is None:
                    self._caught_up()
                    await self._clock.sleep(self._config.idle_poll_s)
                    upcoming = asyncio.ensure_future(self._prepare(self._cursor))
                    continue
                upcoming = asyncio.ensure_future(self._prepare(batch.entries[-1].seq))
                await self._forward(batch)
        finally:
            upcoming.cancel()

    def _caught_up(self) -> None:
        self._metrics.set("upstream_lag_seconds", 0.0, "Age of the oldest unsent entry")

    async def _prepare(self, after: int) -> _Batch | None:
        entries = await self._outbox.outbox_read(after, self._config.batch_points)
        if not entries:
            return None
        batch = _Batch(entries)
        fmt = self._formatter.format
        for entry in entries:
            item = entry.reading if entry.reading is not None else entry_item(entry)
            if item is None:
                batch.gone += 1
                continue
            try:
                batch.lines.append(fmt(item))
                batch.items.append(item)
            except LineError as exc:
                batch.letters.append(self._letter(item, repr(item)[:1000], str(exc)))
        return batch

    async def _forward(self, batch: _Batch) -> None:
        first_ts = next((ts for i in batch.items if (ts := item_ts(i)) is not None), None)
        if first_ts is not None:
            lag = max(0.0, (self._clock.now_ms() - first_ts) / 1000)
            self._metrics.set("upstream_lag_seconds", lag, "Age of the oldest unsent entry")
        rejected = await self._send(batch.lines)
        # What the server took is acknowledged even if the sink is being cancelled meanwhile.
        await asyncio.shield(self._settle(batch, rejected))

    async def _settle(self, batch: _Batch, rejected: list[tuple[int, str]]) -> None:
        lines, letters = batch.lines, batch.letters
        for index, reason in rejected:
            letters.append(self._letter(batch.items[index], lines[index], reason))
        if letters:
            await self._outbox.commit(WriteBatch(dead_letters=letters))
            self._metrics.inc(
                "upstream_dead_letters_total",
                len(letters),
                "Outbox entries the sink or the server refused",
            )
            log.warning(
                "upstream: %d entries dead-lettered, first: %s", len(letters), letters[0].reason
            )
        upto = batch.entries[-1].seq
        await self._outbox.outbox_ack(upto)
        self._cursor = upto
        self._metrics.inc(
            "upstream_points_total", len(lines) - len(rejected), "Points the server accepted"
        )
        if batch.gone:
            self._metrics.inc(
                "upstream_skipped_total", batch.gone, "Outbox entries whose event retention deleted"
            )
        last_ts = item_ts(batch.items[-1]) if batch.items else None
        if last_ts is not None:
            self._metrics.set("upstream_last_point_ms", last_ts, "Device time of the last sent")

    async def _send(self, lines: list[str]) -> list[tuple[int, str]]:
        """Deliver lines; return (index, reason) of those the server rejected as malformed.

        A server rejecting more than `max_rejected_per_batch` lines of one batch is taken to be
        misconfigured rather than the lines bad (they passed the formatter's checks): the batch
        is kept, not dead-lettered, and retried after the longest backoff."""
        while True:
            rejected = await self._isolate_rejected(lines)
            if rejected is not None:
                return rejected
            self._metrics.inc("upstream_batches_held_total", help_="Batches the server refused")
            reason = "the server rejects most points of a batch; keeping it, check the server"
            log.error("upstream: %s", reason)
            self._set_write_problem(reason)
            await self._clock.sleep(self._config.backoff_max_s)

    async def _isolate_rejected(self, lines: list[str]) -> list[tuple[int, str]] | None:
        rejected: list[tuple[int, str]] = []
        pending = [(0, len(lines))] if lines else []
        while pending:
            start, end = pending.pop(0)
            outcome = await self._send_with_retry(lines[start:end])
            if isinstance(outcome, Rejected):
                if end - start == 1:
                    rejected.append((start, f"HTTP {outcome.status}: {outcome.reason}"))
                    if len(rejected) > self._config.max_rejected_per_batch:
                        return None
                else:
                    mid = (start + end) // 2
                    pending[:0] = [(start, mid), (mid, end)]
        return rejected

    async def _send_with_retry(self, lines: list[str]) -> Accepted | Rejected:
        body = "\n".join(lines).encode()
        while True:
            outcome = await asyncio.to_thread(self._writer.write, body)
            kind = type(outcome).__name__.lower()
            self._metrics.inc("upstream_requests_total", help_="Write requests", outcome=kind)
            if not isinstance(outcome, Failed):
                if self._failures:
                    log.info("upstream: server reachable again after %d failures", self._failures)
                    self._failures = 0
                self._set_write_problem(None)
                return outcome
            self._failures += 1
            if self._failures == 1:
                log.warning("upstream: write failed, keeping the batch: %s", outcome.reason)
            self._set_write_problem(f"write failing: {outcome.reason}")
            await self._clock.sleep(self.backoff(self._failures))

    def _set_write_problem(self, problem: str | None) -> None:
        if problem != self._write_problem:
            self._write_problem = problem
            self._refresh_health()

    def _refresh_health(self) -> None:
        """Degraded while writes fail or the backlog is above its high-water mark."""
        alarm = self._alarm.problem if self._alarm is not None else None
        problems = [p for p in (self._write_problem, alarm) if p]
        if problems:
            self._health.set(self.name, HealthState.DEGRADED, "; ".join(problems))
        else:
            self._health.set(self.name, HealthState.RUNNING)

    def backoff(self, failures: int) -> float:
        """Full jitter: uniform in [initial/2, min(max, initial * 2^(failures-1))]."""
        ceiling = min(
            self._config.backoff_max_s,
            self._config.backoff_initial_s * 2 ** min(failures - 1, 30),
        )
        floor = self._config.backoff_initial_s / 2
        return self._rng.uniform(floor, max(floor, ceiling))

    async def _watch_backlog(self) -> None:
        while True:
            status = await self._outbox.outbox_backlog()
            self._metrics.set("upstream_backlog", status.backlog, "Outbox entries not yet sent")
            self._metrics.set("upstream_outbox_bound", status.bound, "storage.outbox_max_rows")
            self._metrics.set(
                "upstream_outbox_shed", status.shed, "Readings the full outbox dropped (stored)"
            )
            if self._alarm is not None:
                await self._alarm.observe(status.backlog)
                self._refresh_health()
            await self._clock.sleep(self._config.backlog_check_s)

    def _letter(self, item: object, payload: str, reason: str) -> DeadLetter:
        return DeadLetter(
            ts_ms=self._clock.now_ms(),
            source="upstream",
            device=item_device(item),
            topic=type(item).__name__.lower(),
            payload=payload.encode()[:4096],
            reason=reason,
        )
