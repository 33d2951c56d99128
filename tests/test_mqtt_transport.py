"""The paho adapter against a real Mosquitto: ack after commit, persistent session, reconnects."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from typing import Literal

import pytest
from pydantic import SecretStr

from collectors.mqtt.transport import Message, MqttTransport
from gateway.config.mqtt import BrokerConfig
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.net import await_until


def _broker(m: Mosquitto, client_id: str, protocol: Literal["5", "3.1.1"] = "5") -> BrokerConfig:
    return BrokerConfig(
        port=m.port,
        client_id=client_id,
        protocol=protocol,
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
    )


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_publish_subscribe_and_manual_ack(
    mosquitto: Mosquitto, protocol: Literal["5", "3.1.1"]
) -> None:
    got: list[Message] = []
    sub = MqttTransport(
        _broker(mosquitto, "t-sub", protocol), subscriptions=["t/#"], on_message=got.append
    )
    async with sub, MqttTransport(_broker(mosquitto, "t-pub")) as pub:
        await asyncio.wait_for(sub.wait_connected(), 5)
        await asyncio.wait_for(pub.wait_connected(), 5)
        await asyncio.wait_for(sub.wait_subscribed(), 5)
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
        _broker(mosquitto, "t-sub", protocol), subscriptions=["t/#"], on_message=again.append
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
        await asyncio.wait_for(sub.wait_subscribed(), 5)
        await pub.publish("r/a", b"before")
        await asyncio.to_thread(mosquitto.restart)
        # The publisher waits for its connection, then the broker's acknowledgement.
        await asyncio.wait_for(pub.publish("r/a", b"after"), 10)

        async def both() -> bool:
            return [m.payload for m in got][-1:] == [b"after"]

        await await_until(both, 10, "message after restart")
        assert b"before" in [m.payload for m in got]
        sub.ack(got)


async def test_writes_wait_while_the_broker_reads_nothing(mosquitto: Mosquitto) -> None:
    """Publishes pile up while the broker is stopped (the socket refuses more), then all go
    out, in order, once it runs again; large packets arrive whole on the other side."""
    got: list[Message] = []
    sub = MqttTransport(_broker(mosquitto, "w-sub"), subscriptions=["w/#"], on_messages=got.extend)
    payloads = [bytes([i % 251]) * 65_000 for i in range(300)]
    async with sub, MqttTransport(_broker(mosquitto, "w-pub")) as pub:
        await asyncio.wait_for(sub.wait_subscribed(), 5)
        await asyncio.wait_for(pub.wait_connected(), 5)
        assert mosquitto.proc is not None
        os.kill(mosquitto.proc.pid, signal.SIGSTOP)
        try:
            futs = [await pub.submit(f"w/{i}", p) for i, p in enumerate(payloads)]

            async def blocked() -> bool:
                return pub._write_waiting

            await await_until(blocked, 5, "the socket to refuse more")
        finally:
            os.kill(mosquitto.proc.pid, signal.SIGCONT)
        await asyncio.wait_for(asyncio.gather(*futs), 20)

        async def all_in() -> bool:
            return len(got) == len(payloads)

        await await_until(all_in, 20, "every large message")
        assert [m.payload for m in got] == payloads
        assert [m.topic for m in got] == [f"w/{i}" for i in range(len(payloads))]
        assert sub.ack(got) == len(payloads)


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


async def test_username_password(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    cmd = ["mosquitto_passwd", "-b", "-c", str(passwd), "gateway", "s3cret-pw"]
    await asyncio.to_thread(subprocess.run, cmd, check=True)
    broker = Mosquitto(tmp_path / "auth", extra_conf=f"password_file {passwd}", anonymous=False)
    broker.start()
    try:
        bad = BrokerConfig(
            port=broker.port,
            client_id="bad",
            username="gateway",
            password="wrong",
            reconnect_min_s=0.05,
        )
        async with MqttTransport(bad) as t:
            await asyncio.sleep(0.5)
            assert not t.connected
            assert "refused" in t.last_error
        good = bad.model_copy(update={"client_id": "good", "password": SecretStr("s3cret-pw")})
        async with MqttTransport(good) as t:
            await asyncio.wait_for(t.wait_connected(), 5)
            await t.publish("x/y", b"ok")
    finally:
        broker.stop()


def make_certs(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1."""
    ca_key, ca, key, csr, crt = (d / n for n in ("ca.key", "ca.pem", "s.key", "s.csr", "s.pem"))
    ext = d / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    ca_cmd = f"req -x509 -newkey rsa:2048 -nodes -days 2 -keyout {ca_key} -out {ca}"
    csr_cmd = f"req -newkey rsa:2048 -nodes -keyout {key} -out {csr}"
    sign_cmd = f"x509 -req -in {csr} -CA {ca} -CAkey {ca_key} -CAcreateserial -out {crt}"
    run = [
        ["openssl", *ca_cmd.split(), "-subj", "/CN=test-ca"],
        ["openssl", *csr_cmd.split(), "-subj", "/CN=127.0.0.1"],
        ["openssl", *sign_cmd.split(), "-days", "2", "-extfile", str(ext)],
    ]
    for cmd in run:
        subprocess.run(cmd, check=True, capture_output=True)
    return ca, crt, key


async def test_tls(tmp_path: Path) -> None:
    ca, crt, key = await asyncio.to_thread(make_certs, tmp_path)
    broker = Mosquitto(tmp_path / "tls", extra_conf=f"certfile {crt}\nkeyfile {key}\ncafile {ca}")
    broker.start()
    try:
        got: list[Message] = []
        cfg = BrokerConfig(port=broker.port, client_id="tls-sub", tls={"ca_file": ca})
        async with MqttTransport(cfg, subscriptions=["s/#"], on_message=got.append) as sub:
            await asyncio.wait_for(sub.wait_subscribed(), 5)
            pub_cfg = cfg.model_copy(update={"client_id": "tls-pub"})
            async with MqttTransport(pub_cfg) as pub:
                await asyncio.gather(*(pub.publish(f"s/{i}", b"x" * 3000) for i in range(300)))

            async def all_in() -> bool:
                return len(got) == 300

            await await_until(all_in, 10, "300 messages over TLS")
            sub.ack(got)
        # Without the CA, the broker's certificate is not trusted: no connection.
        untrusted = BrokerConfig(port=broker.port, client_id="tls-x", tls={}, reconnect_min_s=0.05)
        async with MqttTransport(untrusted) as t:
            await asyncio.sleep(0.5)
            assert not t.connected
            assert "CERTIFICATE_VERIFY_FAILED" in t.last_error
    finally:
        broker.stop()
