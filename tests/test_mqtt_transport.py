"""The paho adapter against a real Mosquitto: ack after commit, persistent session, reconnects."""

from __future__ import annotations

import asyncio

from collectors.mqtt.transport import Message, MqttTransport
from gateway.config.mqtt import BrokerConfig
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.net import await_until


def _broker(m: Mosquitto, client_id: str) -> BrokerConfig:
    return BrokerConfig(port=m.port, client_id=client_id, reconnect_min_s=0.05, reconnect_max_s=0.5)


async def test_publish_subscribe_and_manual_ack(mosquitto: Mosquitto) -> None:
    got: list[Message] = []
    sub = MqttTransport(_broker(mosquitto, "t-sub"), subscriptions=["t/#"], on_message=got.append)
    async with sub, MqttTransport(_broker(mosquitto, "t-pub")) as pub:
        await asyncio.wait_for(sub.wait_connected(), 5)
        await asyncio.wait_for(pub.wait_connected(), 5)
        await asyncio.sleep(0.1)  # subscription in place
        await asyncio.gather(*(pub.publish(f"t/{i}", str(i).encode()) for i in range(2000)))

        async def all_in() -> bool:
            return len(got) == 2000

        await await_until(all_in, 10, "2000 messages")
        assert [m.payload for m in got] == [str(i).encode() for i in range(2000)]
        assert all(m.qos == 1 for m in got)
        # Nothing acknowledged yet: a fresh connection of the same session gets them again.
        assert sub.ack(got[:1000]) == 1000

    again: list[Message] = []
    sub2 = MqttTransport(
        _broker(mosquitto, "t-sub"), subscriptions=["t/#"], on_message=again.append
    )
    async with sub2:

        async def redelivered() -> bool:
            return len(again) == 1000

        await await_until(redelivered, 10, "unacked messages redelivered")
        assert [m.payload for m in again] == [str(i).encode() for i in range(1000, 2000)]
        sub2.ack(again)


async def test_survives_broker_restart(mosquitto: Mosquitto) -> None:
    got: list[Message] = []
    sub = MqttTransport(_broker(mosquitto, "r-sub"), subscriptions=["r/#"], on_message=got.append)
    async with sub, MqttTransport(_broker(mosquitto, "r-pub")) as pub:
        await asyncio.wait_for(sub.wait_connected(), 5)
        await asyncio.sleep(0.1)
        await pub.publish("r/a", b"before")
        await asyncio.to_thread(mosquitto.restart)
        # The publisher waits for its connection, then the broker's acknowledgement.
        await asyncio.wait_for(pub.publish("r/a", b"after"), 10)

        async def both() -> bool:
            return [m.payload for m in got][-1:] == [b"after"]

        await await_until(both, 10, "message after restart")
        assert b"before" in [m.payload for m in got]
        sub.ack(got)


async def test_connection_refused_then_broker_appears(mosquitto: Mosquitto) -> None:
    mosquitto.stop()
    t = MqttTransport(_broker(mosquitto, "late"))
    async with t:
        await asyncio.sleep(0.3)
        assert not t.connected
        assert t.last_error
        await asyncio.to_thread(mosquitto.start)
        await asyncio.wait_for(t.wait_connected(), 10)
        await t.publish("x/y", b"ok")
