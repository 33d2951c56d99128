"""`campus-edge simulate gates`: the building's gates and terminals on a broker."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.commands import Commands

if TYPE_CHECKING:
    from gateway.config.mqtt import BrokerConfig
from simulators.recording.cli import add_broker_args, broker_config


async def simulate(
    broker: BrokerConfig,
    *,
    seed: int,
    building: str,
    speed: float | None,
    hours: float,
    start_ms: int | None,
    incidents: bool,
) -> int:
    """Generate `hours` of the building and publish it; returns messages acknowledged."""
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    from collectors.mqtt.transport import MqttTransport  # noqa: PLC0415
    from simulators.gates.generator import SimConfig, Simulation, default_incidents  # noqa: PLC0415
    from simulators.gates.play import Timed, play  # noqa: PLC0415

    span_ms = int(hours * 3_600_000)
    if start_ms is None:
        now = time.time_ns() // 1_000_000
        # Faster than real time, the simulated clock runs from behind the real one to ahead
        # of it, half the span each way, so device times stay within the gateway's
        # plausibility window (a day either way) for spans up to two days.
        drift = span_ms if speed is None else span_ms * (1 - 1 / speed)
        start_ms = now - int(drift / 2)
    cfg = SimConfig(building=building, seed=seed)
    if incidents:
        cfg = SimConfig(
            building=building,
            seed=seed,
            incidents=default_incidents(start_ms, ZoneInfo(cfg.timezone)),
        )
    msgs = Simulation(cfg, start_ms).generate(start_ms + span_ms)
    timed = (Timed(m.at_ms, m.topic, m.payload, m.qos, m.retain) for m in msgs)
    async with MqttTransport(broker) as t:
        return await play(timed, t.submit, speed=speed)


def _cmd(args: argparse.Namespace) -> int:
    from simulators.gates.residents import make_residents, write_roster  # noqa: PLC0415

    if args.write_roster:
        n = write_roster(Path(args.write_roster), make_residents(args.seed))
        print(f"wrote {n} residents to {args.write_roster}", file=sys.stderr)
        return 0
    start_ms = int(datetime.fromisoformat(args.start).timestamp() * 1000) if args.start else None
    broker = broker_config(args, f"campus-edge-sim-gates-{args.seed}", 0)
    speed = None if args.as_fast_as_possible else args.speed
    try:
        n = asyncio.run(
            simulate(
                broker,
                seed=args.seed,
                building=args.building,
                speed=speed,
                hours=args.hours,
                start_ms=start_ms,
                incidents=not args.no_incidents,
            )
        )
    except KeyboardInterrupt:
        return 130
    print(f"published {n} messages", file=sys.stderr)
    return 0


def register(commands: Commands) -> None:
    p = commands.simulate.add_parser(
        "gates", help="access gates and self-service terminals of the example building (MQTT)"
    )
    add_broker_args(p)
    p.add_argument("--building", default="b07", help="building id used in topics")
    p.add_argument("--seed", type=int, default=7, help="same seed, same run")
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours to publish")
    p.add_argument("--start", help="simulated start time (ISO 8601 with offset)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    pace.add_argument("--as-fast-as-possible", action="store_true", help="no pacing")
    p.add_argument("--no-incidents", action="store_true", help="leave out the incident timeline")
    p.add_argument(
        "--write-roster",
        metavar="CSV",
        help="write the residents' roster (cardNo,room,name) and exit",
    )
    p.set_defaults(func=_cmd)
