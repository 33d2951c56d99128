"""The `campus-edge` command line.

Packages add commands through `register(commands)` in their `cli` module (see
`gateway.commands`). Those modules are imported when the parser is built, so they must import
only argparse-level things at their top; heavy imports belong inside the command functions.
"""

# Commands import what they need when they run, so `campus-edge --help` stays fast.
# ruff: noqa: PLC0415
from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from gateway.commands import Commands

if TYPE_CHECKING:
    from gateway.config.storage import StorageConfig

REGISTRARS = (
    "collectors.mqtt.cli",
    "collectors.modbus.cli",
    "collectors.camera.cli",
    "rules.cli",
    "dashboard_api.cli",
    "simulators.cli",
    "dashboard_api.campus.cli",
)
"""Modules whose `register(commands)` adds subcommands."""

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="campus-edge",
        description="IoT edge gateway and operations cockpit for a dormitory building.",
    )
    top = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = top.add_parser("run", help="run the gateway until SIGTERM/SIGINT")
    run.add_argument("--config", "-c", required=True, type=Path, help="the building's YAML file")
    run.set_defaults(func=_cmd_run)

    check = top.add_parser("check-config", help="validate a configuration file, start nothing")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_cmd_check_config)

    schema = top.add_parser("schema", help="print the JSON schema of the configuration")
    schema.set_defaults(func=_cmd_schema)

    dead = top.add_parser("dead-letters", help="list input rejected at the edge, per device")
    dead.add_argument("--config", "-c", required=True, type=Path)
    dead.add_argument("--device", help="only this device ('' for unknown devices)")
    dead.add_argument("--limit", type=int, default=20, help="most letters listed (default 20)")
    dead.set_defaults(func=_cmd_dead_letters)

    sim = top.add_parser("simulate", help="simulate devices of the example building")
    simulate = sim.add_subparsers(dest="device_kind", metavar="DEVICE_KIND")
    sim.set_defaults(func=_usage(sim))

    commands = Commands(top=top, simulate=simulate)
    for name in REGISTRARS:
        try:
            importlib.import_module(name).register(commands)
        except Exception as exc:
            print(f"campus-edge: commands of {name} unavailable: {exc!r}", file=sys.stderr)
    return parser


def _usage(parser: argparse.ArgumentParser) -> Handler:
    def show(_: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return show


def _cmd_run(args: argparse.Namespace) -> int:
    from gateway.app import run_blocking

    return run_blocking(args.config)


def _cmd_check_config(args: argparse.Namespace) -> int:
    from gateway.config.loader import ConfigError, build_catalog, load_config

    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    catalog = build_catalog(config)
    kinds = Counter(str(d.kind) for d in catalog.devices.values())
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    devices = f"{len(catalog)} devices" + (f" ({by_kind})" if by_kind else "")
    enabled = ", ".join(config.enabled_sections()) or "none"
    print(f"{args.file}: ok: building {config.building.id}, {devices}; enabled: {enabled}")
    return 0


def _cmd_schema(_: argparse.Namespace) -> int:
    from gateway.config.root import GatewayConfig

    print(json.dumps(GatewayConfig.model_json_schema(), indent=2))
    return 0


def _cmd_dead_letters(args: argparse.Namespace) -> int:
    from gateway.config.loader import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return asyncio.run(_dead_letters(config.storage, args.device, args.limit))


async def _dead_letters(storage: StorageConfig, device: str | None, limit: int) -> int:
    from gateway.clock import SystemClock
    from gateway.metrics import Metrics
    from gateway.storage.store import Store

    if not storage.path.exists():
        print(f"no store at {storage.path}", file=sys.stderr)
        return 1
    store = await Store.open(storage, SystemClock(), Metrics())
    try:
        counts = await store.dead_letter_counts()
        letters = await store.dead_letters(device=device, limit=limit)
    finally:
        await store.close()
    print("dead letters per device:")
    for dev, n in sorted(counts.items()):
        print(f"  {dev or '(unknown device)'}: {n}")
    if not counts:
        print("  none")
    for stored in letters:
        dl = stored.letter
        payload = dl.payload[:120].decode("utf-8", errors="replace")
        print(
            f"#{stored.id} ts_ms={dl.ts_ms} source={dl.source} device={dl.device or '-'} "
            f"topic={dl.topic} reason={dl.reason!r} payload={payload!r}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = cast(Handler | None, getattr(args, "func", None))
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
