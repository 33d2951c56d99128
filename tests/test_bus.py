"""The in-process bus: telemetry is shed (and counted) for a slow subscriber, events never are."""

from __future__ import annotations

import asyncio

import pytest

from gateway.bus import POLICY, Bus, Overflow, Stream
from gateway.metrics import Metrics


def test_every_stream_declares_its_overflow_policy() -> None:
    assert set(POLICY) == set(Stream)
    assert POLICY[Stream.READINGS] is Overflow.SHED
    for stream in (Stream.EVENTS, Stream.STATUS, Stream.ALERTS, Stream.AUDIT):
        assert POLICY[stream] is Overflow.BLOCK


async def test_items_reach_every_subscriber_in_order() -> None:
    bus = Bus()
    a = bus.subscribe(Stream.EVENTS, "a")
    b = bus.subscribe(Stream.EVENTS, "b")
    await bus.publish_many(Stream.EVENTS, [1, 2, 3])
    assert a.get_nowait_many(10) == [1, 2, 3]
    assert [await b.get() for _ in range(3)] == [1, 2, 3]
    other = bus.subscribe(Stream.ALERTS, "other")
    await bus.publish(Stream.EVENTS, 4)
    assert other.queue.empty()


async def test_shed_stream_drops_newest_for_the_slow_subscriber_and_counts() -> None:
    metrics = Metrics()
    bus = Bus(metrics)
    slow = bus.subscribe(Stream.READINGS, "slow", maxsize=3)
    fast = bus.subscribe(Stream.READINGS, "fast", maxsize=100)
    await asyncio.wait_for(bus.publish_many(Stream.READINGS, list(range(10))), 1.0)
    assert slow.get_nowait_many(100) == [0, 1, 2]
    assert fast.get_nowait_many(100) == list(range(10))
    assert metrics.value("bus_shed_total", stream="readings", subscriber="slow") == 7
    assert metrics.value("bus_shed_total", stream="readings", subscriber="fast") == 0
    text = metrics.render()
    assert 'campus_edge_bus_shed_total{stream="readings",subscriber="slow"} 7' in text


async def test_block_stream_never_drops_and_applies_backpressure() -> None:
    metrics = Metrics()
    bus = Bus(metrics)
    sub = bus.subscribe(Stream.EVENTS, "writer", maxsize=2)
    publisher = asyncio.create_task(bus.publish_many(Stream.EVENTS, list(range(6))))
    await asyncio.sleep(0.05)
    assert not publisher.done(), "the publisher must wait for room"
    assert sub.queue.qsize() == 2
    assert 'subscriber="writer"} 2' in metrics.render()
    received: list[int] = []
    while len(received) < 6:
        received.append(await asyncio.wait_for(sub.get(), 1.0))
    await asyncio.wait_for(publisher, 1.0)
    assert received == list(range(6))
    assert metrics.total("bus_shed_total") == 0


async def test_unsubscribing_releases_a_blocked_publisher() -> None:
    bus = Bus()
    sub = bus.subscribe(Stream.ALERTS, "gone", maxsize=1)
    publisher = asyncio.create_task(bus.publish_many(Stream.ALERTS, ["a", "b", "c"]))
    await asyncio.sleep(0.02)
    assert not publisher.done()
    sub.close()
    await asyncio.wait_for(publisher, 1.0)
    await bus.publish(Stream.ALERTS, "d")  # nobody listens: returns at once
    assert sub.closed


async def test_subscription_iterates() -> None:
    bus = Bus()
    sub = bus.subscribe(Stream.KPI, "k")
    await bus.publish_many(Stream.KPI, ("x", "y"))
    seen = []
    async for item in sub:
        seen.append(item)
        if len(seen) == 2:
            break
    assert seen == ["x", "y"]


def test_metrics_render_escapes_labels_and_rejects_kind_changes() -> None:
    metrics = Metrics()
    metrics.inc("weird_total", device='a"b\\c\nd', help_="line one\nline two")
    text = metrics.render()
    assert 'campus_edge_weird_total{device="a\\"b\\\\c\\nd"} 1' in text
    assert "# HELP campus_edge_weird_total line one\\nline two" in text
    with pytest.raises(ValueError, match="is a counter"):
        metrics.set("weird_total", 1.0)
