"""Builds the rule engine, the alert service and the notifier from the configuration."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.bus import Stream, Subscription
from gateway.config.rules import RulesConfig
from gateway.runtime import Component, ConfigurationError, HealthState, Runtime, Stage
from gateway.sinks.notify import MQTT_CHANNEL, Deliver, Notifier, mqtt_deliver
from gateway.sinks.webhook import WebhookSender
from rules.engine import Engine
from rules.runner import RuleRunner, classify
from rules.service import AlertService
from rules.spec import RuleError

log = logging.getLogger(__name__)

_DRAIN = 2000


class RulesComponent:
    """Feeds readings and statuses from the bus and events from the store (in commit order,
    woken by the bus) to the engine; ticks its timers; persists its state."""

    stage = Stage.RULES

    def __init__(self, runtime: Runtime, runner: RuleRunner, notifier: Notifier | None) -> None:
        self.name = "rules"
        self.runtime = runtime
        self.runner = runner
        self.notifier = notifier
        bus = runtime.bus
        self.readings = bus.subscribe(Stream.READINGS, "rules", maxsize=50_000)
        self.statuses = bus.subscribe(Stream.STATUS, "rules")
        self.events = bus.subscribe(Stream.EVENTS, "rules")

    async def run(self) -> None:
        health = self.runtime.health
        health.set(self.name, HealthState.STARTING, "restoring rule state")
        await self.runner.start()
        health.set(self.name, HealthState.RUNNING, f"caught up on {self.runner.replayed} inputs")
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._direct(self.readings), name="rules:readings")
                tg.create_task(self._direct(self.statuses), name="rules:statuses")
                tg.create_task(self._events(), name="rules:events")
                tg.create_task(self._ticks(), name="rules:ticks")
                tg.create_task(self._roster(), name="rules:roster")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.runner.flush())

    async def _direct(self, sub: Subscription) -> None:
        while True:
            first = await sub.get()
            items, _ = classify([first, *sub.get_nowait_many(_DRAIN)])
            if await self.runner.feed(items) and self.notifier is not None:
                self.notifier.poke()

    async def _events(self) -> None:
        while True:
            await self.events.get()
            self.events.get_nowait_many(_DRAIN)
            if await self.runner.pull_events() and self.notifier is not None:
                self.notifier.poke()

    async def _ticks(self) -> None:
        clock = self.runtime.clock
        every = self.runner.config.tick_s
        while True:
            await clock.sleep(every)
            if await self.runner.tick() and self.notifier is not None:
                self.notifier.poke()

    async def _roster(self) -> None:
        clock = self.runtime.clock
        while True:
            await clock.sleep(self.runner.config.residents.roster_reload_s)
            await self.runner.reload_roster()


class NotifierComponent:
    """Delivers the notification outbox on MQTT (own client id, `-alerts`) and webhooks."""

    stage = Stage.OUTPUT

    def __init__(self, runtime: Runtime, notifier_config: RulesConfig) -> None:
        self.name = "notify"
        self.runtime = runtime
        self.config = notifier_config.notify
        self.notifier: Notifier | None = None
        self._ready = asyncio.Event()

    def make(self, channels: dict[str, Deliver]) -> Notifier:
        rt = self.runtime
        self.notifier = Notifier(
            store=rt.store,
            clock=rt.clock,
            metrics=rt.metrics,
            config=self.config,
            channels=channels,
        )
        return self.notifier

    async def run(self) -> None:
        senders = [WebhookSender(h) for h in self.config.webhooks]
        channels: dict[str, Deliver] = {f"webhook:{s.config.name}": s for s in senders}
        try:
            if self.config.mqtt and self.runtime.config.mqtt.enabled:
                from collectors.mqtt.transport import MqttTransport  # noqa: PLC0415

                broker = self.runtime.config.mqtt.broker
                broker = broker.model_copy(update={"client_id": broker.client_id + "-alerts"})
                async with MqttTransport(broker) as transport:
                    channels[MQTT_CHANNEL] = mqtt_deliver(transport)
                    await self._run(channels)
            else:
                await self._run(channels)
        finally:
            for s in senders:
                await s.aclose()

    async def _run(self, channels: dict[str, Deliver]) -> None:
        notifier = self.notifier
        if notifier is None:
            return
        notifier.channels = channels
        await notifier.run()


class _Parked:
    """Stands in for the rule engine when its configuration cannot run."""

    stage = Stage.RULES

    def __init__(self, message: str) -> None:
        self.name = "rules"
        self.message = message

    async def run(self) -> None:
        raise ConfigurationError(self.message)


def build_components(runtime: Runtime) -> list[Component]:
    config = runtime.config.rules
    if not config.enabled:
        return []
    try:
        engine = Engine(
            config,
            catalog=runtime.catalog,
            timezone=runtime.config.building.timezone,
            clock=runtime.clock,
        )
    except (RuleError, ValueError) as exc:
        return [_Parked(f"rules: {exc}")]
    mqtt_on = config.notify.mqtt and runtime.config.mqtt.enabled
    runner = RuleRunner(
        engine,
        store=runtime.store,
        bus=runtime.bus,
        clock=runtime.clock,
        config=config,
        building=runtime.config.building.id,
        notify=config.notify.model_copy(update={"mqtt": mqtt_on}),
    )
    runtime.alert_service = AlertService(runner)
    if not (mqtt_on or config.notify.webhooks):
        return [RulesComponent(runtime, runner, None)]
    notify = NotifierComponent(runtime, config)
    notifier = notify.make({})
    return [RulesComponent(runtime, runner, notifier), notify]
