"""The adapter's own framing of inbound PUBLISH and outbound PUBACK (pure logic, no broker).

Packets are encoded here from the MQTT 3.1.1 / 5 specifications, independently of the
adapter, and fed to it cut at every byte and in random pieces.
"""

from __future__ import annotations

import random
import struct

import pytest

from collectors.mqtt.transport import Message, MqttTransport, ProtocolError, _Wire
from gateway.config.mqtt import BrokerConfig


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(
    topic: str,
    payload: bytes,
    *,
    qos: int = 1,
    mid: int = 1,
    retain: bool = False,
    v5: bool = True,
    properties: bytes = b"",
) -> bytes:
    t = topic.encode()
    body = struct.pack(">H", len(t)) + t
    if qos:
        body += struct.pack(">H", mid)
    if v5:
        body += varint(len(properties)) + properties
    body += payload
    header = 0x30 | (qos << 1) | int(retain)
    return bytes([header]) + varint(len(body)) + body


def adapter(v5: bool) -> tuple[MqttTransport, _Wire, list[Message]]:
    got: list[Message] = []
    t = MqttTransport(BrokerConfig(protocol="5" if v5 else "3.1.1"), on_messages=got.extend)
    wire = _Wire(None)
    t._wire = wire
    t._generation = 7
    return t, wire, got


Case = tuple[str, bytes, int, bool, int]
"""topic, payload, QoS, retain, packet id"""
# Lengths around the one-, two- and three-byte remaining-length boundaries, QoS 0 and 1,
# retained, non-ASCII topics, and (MQTT 5) properties the adapter skips.
CASES: list[Case] = [
    ("campus/b07/gate/gate-1/event", b'{"serialNo": 1}', 1, False, 1),
    ("a", b"", 0, False, 0),
    ("campus/b07/gate/闸机-2/status", b"x" * 120, 1, True, 65535),
    ("t/2", b"y" * 16_500, 1, False, 2),
    ("t/3", bytes(range(256)), 0, True, 0),
]
PROPERTIES = b"\x01\x01" + b"\x26\x00\x01k\x00\x01v"  # payload format, a user property


def stream(v5: bool, cases: list[Case]) -> bytes:
    return b"".join(
        publish(t, p, qos=q, mid=m, retain=r, v5=v5, properties=PROPERTIES if i % 2 else b"")
        for i, (t, p, q, r, m) in enumerate(cases)
    )


@pytest.mark.parametrize("v5", [True, False])
def test_publish_cut_at_every_byte(v5: bool) -> None:
    small = CASES[:3]
    data = stream(v5, small)
    for cut in range(1, len(data)):
        t, wire, got = adapter(v5)
        t._received(wire, data[:cut])
        t._received(wire, data[cut:])
        assert [(m.topic, m.payload, m.qos, m.retain, m.mid) for m in got] == small
        assert all(m.generation == 7 for m in got)
        assert t._partial == b""


@pytest.mark.parametrize("v5", [True, False])
def test_publish_in_random_pieces(v5: bool) -> None:
    data = stream(v5, CASES)
    rng = random.Random(5)
    for _ in range(50):
        t, wire, got = adapter(v5)
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 3000)
            t._received(wire, data[pos : pos + step])
            pos += step
        assert [(m.topic, m.payload, m.qos, m.retain, m.mid) for m in got] == CASES
        assert t._partial == b""


def test_malformed_publish_is_a_protocol_error() -> None:
    t, wire, _ = adapter(v5=False)
    bad = bytes([0x32, 4]) + struct.pack(">H", 50) + b"ab"  # topic longer than the packet
    with pytest.raises(ProtocolError):
        t._received(wire, bad)
    t, wire, _ = adapter(v5=True)
    cut = bytes([0x32, 4]) + struct.pack(">H", 0) + struct.pack(">H", 9)  # no property length
    with pytest.raises(ProtocolError):
        t._received(wire, cut)


def test_ack_writes_pubacks_of_this_connection_only() -> None:
    t, wire, got = adapter(v5=True)
    t._connected.set()
    t._received(wire, publish("a/b", b"1", mid=10) + publish("a/b", b"2", qos=0))
    t._received(wire, publish("a/b", b"3", mid=258))
    stale = Message("a/b", b"old", 1, False, 11, generation=6)
    assert t.ack([*got, stale]) == 2
    assert bytes(wire.out) == b"\x40\x02\x00\x0a" + b"\x40\x02\x01\x02"
