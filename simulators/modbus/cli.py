"""`campus-edge simulate modbus`: a building's meters and safety modules on loopback ports."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

import yaml

from simulators.modbus.building import SAFETY, BuildingSim, Layout
from simulators.modbus.server import FAULT_KINDS, Fault


def parse_fault(text: str) -> tuple[str, int, Fault]:
    """`CONVERTER:UNIT:KIND[:ARG]`, e.g. `conv-3:12:silent`, `safety:2:exception:6`,
    `conv-1:4:slow:2.5`."""
    parts = text.split(":")
    if len(parts) not in (3, 4) or parts[2] not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(
            f"fault {text!r}: expected CONVERTER:UNIT:KIND[:ARG], KIND one of {FAULT_KINDS}"
        )
    conv, unit, kind = parts[0], int(parts[1]), parts[2]
    arg = parts[3] if len(parts) == 4 else None
    if kind == "exception":
        fault = Fault("exception", code=int(arg or 4))
    elif kind == "slow":
        fault = Fault("slow", delay_s=float(arg or 2.0))
    else:
        fault = Fault(kind)  # type: ignore[arg-type]
    return conv, unit, fault


def build(args: argparse.Namespace) -> BuildingSim:
    layout = Layout(floors=args.floors, rooms=args.rooms, seed=args.seed)
    ports = {layout.conv_id(f): args.base_port + f - 1 for f in range(1, args.floors + 1)}
    ports[SAFETY] = args.base_port + args.floors
    sim = BuildingSim(layout, ports=ports)
    for conv, unit, fault in args.fault:
        if conv not in sim.servers or unit not in sim.servers[conv].units:
            raise SystemExit(f"--fault: no unit {unit} on converter {conv!r}")
        sim.servers[conv].set_fault(unit, fault)
    return sim


async def serve(args: argparse.Namespace) -> int:
    sim = build(args)
    await sim.start()
    section = {"modbus": sim.modbus_section(args.host_in_config)}
    text = yaml.safe_dump(section, sort_keys=False)
    if args.config_out:
        await asyncio.to_thread(Path(args.config_out).write_text, text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    sys.stdout.flush()
    sys.stderr.write(
        f"simulating {args.floors} floors × {args.rooms} rooms on ports "
        f"{args.base_port}–{args.base_port + args.floors} (seed {args.seed}, "
        f"over-cap rooms {', '.join(sim.layout.capped_rooms())}); Ctrl-C stops\n"
    )
    try:
        await sim.run(speed=args.speed)
    finally:
        await sim.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve(args))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: `python -m simulators.modbus [options]`."""
    parser = argparse.ArgumentParser(prog="python -m simulators.modbus")
    add_parser(parser.add_subparsers(required=True))
    args = parser.parse_args(["modbus", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "modbus",
        help="room power meters and floor safety modules (Modbus TCP servers)",
        description="Serve a building's Modbus converters on 127.0.0.1: floor f's meters on "
        "BASE_PORT+f-1 (unit id = room number on the floor), the safety modules on "
        "BASE_PORT+FLOORS (unit id = floor). Prints the matching `modbus:` config section.",
    )
    p.add_argument("--floors", type=int, default=6, help="floors (default 6)")
    p.add_argument("--rooms", type=int, default=20, help="rooms per floor (default 20)")
    p.add_argument("--seed", type=int, default=1, help="seed of loads and incidents")
    p.add_argument("--base-port", type=int, default=15020, help="port of floor 1 (default 15020)")
    p.add_argument("--speed", type=float, default=1.0, help="virtual seconds per real second")
    p.add_argument(
        "--fault",
        type=parse_fault,
        action="append",
        default=[],
        metavar="CONV:UNIT:KIND[:ARG]",
        help=f"inject a fault ({', '.join(FAULT_KINDS)}); repeatable",
    )
    p.add_argument("--config-out", help="write the `modbus:` section here instead of stdout")
    p.add_argument("--host-in-config", default="127.0.0.1", help="host written in the config")
    p.set_defaults(func=run)
