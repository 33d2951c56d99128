"""Alert notifications: a durable outbox delivered to a real webhook (with retry across a
restart) and to a real Mosquitto broker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from collectors.mqtt.transport import MqttTransport
from gateway.clock import ManualClock
from gateway.config.mqtt import BrokerConfig
from gateway.config.rules import RulesConfig
from gateway.metrics import Metrics
from gateway.model import Event
from gateway.sinks.notify import MQTT_CHANNEL, Notifier, mqtt_deliver
from gateway.sinks.webhook import WebhookSender
from gateway.storage.batch import WriteBatch
from gateway.storage.store import Store
from rules import persist
from rules.engine import Engine
from rules.runner import RuleRunner
from simulators.scenarios.building import TIMEZONE, standard_catalog
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.net import free_port, wait_for_port


class Hook:
    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        self.fail_next = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if hook.fail_next > 0:
                    hook.fail_next -= 1
                    self.send_response(503)
                else:
                    hook.bodies.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        wait_for_port(self.port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def _config(hook_port: int, mqtt: bool) -> RulesConfig:
    return RulesConfig.model_validate(
        {
            "overrides": {"device.offline": {"enabled": False}},
            "notify": {
                "mqtt": mqtt,
                "retry_initial_s": 5,
                "webhooks": [{"name": "desk", "url": f"http://127.0.0.1:{hook_port}/alerts"}],
            },
        }
    )


async def _raise_tailgate(store: Store, clock: ManualClock, config: RulesConfig) -> None:
    engine = Engine(config, catalog=standard_catalog(), timezone=TIMEZONE, clock=clock)
    runner = RuleRunner(engine, store=store, bus=None, clock=clock, config=config, building="b07")
    await runner.start()
    now = clock.now_ms()
    await store.commit(
        WriteBatch(
            events=[Event("gate-1:1", "gate-1", "gate.tailgate", now, now, {"direction": "in"})]
        )
    )
    [change] = await runner.pull_events()
    assert change.alert.rule == "gate.tailgate"


async def test_webhook_retries_and_survives_restart(
    store: Store, store_clock: ManualClock, hook: Hook
) -> None:
    config = _config(hook.port, mqtt=False)
    await _raise_tailgate(store, store_clock, config)
    assert await store.read(persist.outbox_backlog) == {"webhook:desk": 1}

    sender = WebhookSender(config.notify.webhooks[0])
    hook.fail_next = 1
    notifier = Notifier(
        store=store,
        clock=store_clock,
        metrics=Metrics(),
        config=config.notify,
        channels={"webhook:desk": sender},
    )
    assert await notifier.drain_once("webhook:desk", sender) == 0
    [row] = await store.read(lambda c: persist.due_outbox(c, "webhook:desk"))
    assert row.attempts == 1
    assert row.next_ms == store_clock.now_ms() + 5000
    await sender.aclose()

    # a new notifier (after a restart) finds the row and delivers it when the retry is due
    sender2 = WebhookSender(config.notify.webhooks[0])
    again = Notifier(
        store=store, clock=store_clock, metrics=Metrics(), config=config.notify, channels={}
    )
    assert await again.drain_once("webhook:desk", sender2) == 0
    store_clock.advance(5)
    assert await again.drain_once("webhook:desk", sender2) == 1
    await sender2.aclose()
    assert await store.read(persist.outbox_backlog) == {}
    [body] = hook.bodies
    assert body["building"] == "b07"
    assert body["alert"]["rule"] == "gate.tailgate"  # type: ignore[index]
    assert body["transition"]["action"] == "open"  # type: ignore[index]


async def test_mqtt_publishes_alerts_northbound(
    store: Store, store_clock: ManualClock, hook: Hook, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    try:
        sub_cmd = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1"]
        sub_cmd += ["-i", "alerts-sub", "-c", "-t", "campus/b07/alert/#"]
        # a persistent session, subscribed before anything is published
        await asyncio.to_thread(subprocess.run, [*sub_cmd, "-E"], check=True, timeout=20)
        config = _config(hook.port, mqtt=True)
        await _raise_tailgate(store, store_clock, config)
        async with MqttTransport(BrokerConfig(port=broker.port, client_id="t-alerts")) as t:
            await t.wait_connected()
            notifier = Notifier(
                store=store, clock=store_clock, metrics=Metrics(), config=config.notify, channels={}
            )
            assert await notifier.drain_once(MQTT_CHANNEL, mqtt_deliver(t)) == 1
        done = await asyncio.to_thread(
            subprocess.run,
            [*sub_cmd, "-C", "1", "-v", "-W", "20"],
            check=True,
            timeout=30,
            capture_output=True,
        )
        out = done.stdout
        topic, _, payload = out.decode().partition(" ")
        assert topic == "campus/b07/alert/gate.tailgate"
        assert json.loads(payload)["alert"]["subject"] == "gate-1"
    finally:
        broker.stop()
