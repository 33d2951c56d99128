"""`campus-edge record` and `campus-edge replay`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.commands import Commands

if TYPE_CHECKING:
    from gateway.config.mqtt import BrokerConfig


def broker_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {text!r}")
    return host, int(port)


def add_broker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", type=broker_address, default=("127.0.0.1", 1883), help="host:port")
    p.add_argument("--username", help="broker user name")
    p.add_argument(
        "--password-env", metavar="VAR", help="environment variable holding the password"
    )
    p.add_argument("--client-id", help="MQTT client id (default: derived from the command)")


def broker_config(args: argparse.Namespace, default_id: str, session_expiry_s: int) -> BrokerConfig:
    from gateway.config.mqtt import BrokerConfig  # noqa: PLC0415

    password = os.environ.get(args.password_env) if args.password_env else None
    return BrokerConfig(
        host=args.broker[0],
        port=args.broker[1],
        client_id=args.client_id or default_id,
        username=args.username,
        password=password,
        session_expiry_s=session_expiry_s,
        reconnect_max_s=5.0,
    )


async def record(
    broker: BrokerConfig,
    topics: list[str],
    out: Path,
    *,
    duration_s: float | None = None,
    count: int | None = None,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> int:
    """Write what arrives on `topics` to `out` until `duration_s`, `count` or `stop`;
    `ready` is set once the broker acknowledged the subscriptions."""
    from collectors.mqtt.transport import Message, MqttTransport  # noqa: PLC0415
    from simulators.recording.jsonl import encode  # noqa: PLC0415

    stop = stop or asyncio.Event()
    n = 0
    with out.open("a", encoding="utf-8") as fh:
        batch: list[Message] = []

        def on_message(m: Message) -> None:
            nonlocal n
            fh.write(encode(time.time_ns() // 1_000_000, m.topic, m.qos, m.retain, m.payload))
            fh.write("\n")
            batch.append(m)
            n += 1
            if count is not None and n >= count:
                stop.set()

        t = MqttTransport(
            broker,
            subscriptions=topics,
            on_message=on_message,
            retain_as_published=True,
            retained_on_resubscribe=True,
        )
        async with t:
            if ready is not None:
                await t.wait_subscribed()
                ready.set()
            deadline = None if duration_s is None else time.monotonic() + duration_s
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)
                fh.flush()
                t.ack(batch)
                batch.clear()
                if deadline is not None and time.monotonic() >= deadline:
                    break
            fh.flush()
            t.ack(batch)
    return n


async def replay(broker: BrokerConfig, path: Path, speed: float | None) -> int:
    """Publish a recording in its order; `speed` None is as fast as possible."""
    from collectors.mqtt.transport import MqttTransport  # noqa: PLC0415
    from simulators.gates.play import play  # noqa: PLC0415
    from simulators.recording.jsonl import read  # noqa: PLC0415

    async with MqttTransport(broker) as t:
        return await play(read(path), t.submit, speed=speed)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def _record_cmd(args: argparse.Namespace) -> int:
    broker = broker_config(args, f"campus-edge-record-{os.getpid()}", 0)

    async def main() -> int:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        return await record(
            broker,
            args.topic or ["campus/#"],
            Path(args.out),
            duration_s=args.duration,
            count=args.count,
            stop=stop,
        )

    n = asyncio.run(main())
    print(f"recorded {n} messages to {args.out}", file=sys.stderr)
    return 0


def _replay_cmd(args: argparse.Namespace) -> int:
    broker = broker_config(args, f"campus-edge-replay-{os.getpid()}", 0)
    speed = None if args.as_fast_as_possible else args.speed
    try:
        n = asyncio.run(replay(broker, Path(args.file), speed))
    except (OSError, ValueError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 1
    print(f"replayed {n} messages from {args.file}", file=sys.stderr)
    return 0


def register(commands: Commands) -> None:
    rec = commands.top.add_parser(
        "record", help="record MQTT topics to a JSON Lines file (time, topic, QoS, retain, payload)"
    )
    add_broker_args(rec)
    rec.add_argument(
        "--topic", action="append", help="topic filter, repeatable (default: campus/#)"
    )
    rec.add_argument("--out", required=True, help="JSON Lines file (appended to)")
    rec.add_argument("--duration", type=float, help="stop after this many seconds")
    rec.add_argument("--count", type=int, help="stop after this many messages")
    rec.set_defaults(func=_record_cmd)

    rep = commands.top.add_parser("replay", help="publish a recording back, in order")
    rep.add_argument("file", help="JSON Lines recording")
    add_broker_args(rep)
    pace = rep.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed", type=float, default=1.0, help="time factor (1: real time, 60: a minute a second)"
    )
    pace.add_argument(
        "--as-fast-as-possible", action="store_true", help="ignore the recorded spacing"
    )
    rep.set_defaults(func=_replay_cmd)
