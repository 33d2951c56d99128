"""Commands: `scenario run FILE...`, `residents import ...`, `rules list`."""

# Commands import what they need when they run, so `campus-edge --help` stays fast.
# ruff: noqa: PLC0415
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.commands import Commands
    from gateway.config.root import GatewayConfig
    from rules.residents_io import LeaveRow, ResidentRow


def register(commands: Commands) -> None:
    scenario = commands.top.add_parser("scenario", help="run alert scenarios on a virtual clock")
    sub = scenario.add_subparsers(dest="scenario_command", metavar="ACTION")
    run = sub.add_parser(
        "run", help="run scenario files (or directories of them); exit 1 on any mismatch"
    )
    run.add_argument(
        "files", nargs="*", type=Path, help="scenario YAML files or directories (default: built-in)"
    )
    run.add_argument("--quiet", "-q", action="store_true", help="print failures only")
    run.set_defaults(func=_cmd_scenario_run)
    scenario.set_defaults(func=lambda _: _help(scenario))

    residents = commands.top.add_parser("residents", help="resident roster and approved leave")
    rsub = residents.add_subparsers(dest="residents_command", metavar="ACTION")
    imp = rsub.add_parser(
        "import", help="import the roster (cardNo,room,name,...) and leave (cardNo,from,to) CSVs"
    )
    imp.add_argument("--config", "-c", required=True, type=Path, help="the building's YAML file")
    imp.add_argument("--roster", type=Path, help="roster CSV: cardNo,room,name[,more columns]")
    imp.add_argument("--leave", type=Path, help="approved leave CSV: cardNo,from,to")
    imp.set_defaults(func=_cmd_residents_import)
    residents.set_defaults(func=lambda _: _help(residents))

    rules = commands.top.add_parser("rules", help="the building's alert rules")
    rl = rules.add_subparsers(dest="rules_command", metavar="ACTION")
    lst = rl.add_parser("list", help="list the rules in effect (catalogue + overrides)")
    lst.add_argument("--config", "-c", type=Path, help="the building's YAML file")
    lst.set_defaults(func=_cmd_rules_list)
    rules.set_defaults(func=lambda _: _help(rules))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _cmd_scenario_run(args: argparse.Namespace) -> int:
    from simulators.scenarios.runner import ScenarioError, builtin_dir, run_file, scenario_files

    files = scenario_files(list(args.files) or [builtin_dir()])
    if not files:
        print("no scenario files found", file=sys.stderr)
        return 2
    failed = 0
    for path in files:
        try:
            outcome = asyncio.run(run_file(path))
        except (ScenarioError, ValueError) as exc:
            print(f"ERROR {path}: {exc}")
            failed += 1
            continue
        if not outcome.ok:
            failed += 1
        if not outcome.ok or not args.quiet:
            print(outcome.report())
    print(f"{len(files) - failed} of {len(files)} scenarios passed")
    return 1 if failed else 0


def _cmd_residents_import(args: argparse.Namespace) -> int:
    from gateway.config.loader import ConfigError, load_config
    from rules.residents_io import RosterImportError, read_leave, read_roster

    if args.roster is None and args.leave is None:
        print("give --roster and/or --leave", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
        roster = read_roster(args.roster) if args.roster else []
        leave = read_leave(args.leave) if args.leave else []
    except (ConfigError, RosterImportError) as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        counts = asyncio.run(_import(config, roster, leave))
    except RosterImportError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"imported {counts['residents']} residents and {counts['leave']} leave entries")
    return 0


async def _import(
    config: GatewayConfig, roster: list[ResidentRow], leave: list[LeaveRow]
) -> dict[str, int]:
    from gateway.clock import SystemClock
    from gateway.metrics import Metrics
    from gateway.privacy import Pseudonymizer
    from gateway.storage.store import Store
    from rules.residents_io import import_rows

    clock = SystemClock()
    store = await Store.open(config.storage, clock, Metrics())
    try:
        return await import_rows(
            store,
            Pseudonymizer(config.privacy.card_key.get_secret_value().encode()),
            config.building.timezone,
            roster,
            leave,
            now_ms=clock.now_ms(),
        )
    finally:
        await store.close()


def _cmd_rules_list(args: argparse.Namespace) -> int:
    from gateway.config.loader import ConfigError, load_config
    from gateway.config.rules import RulesConfig
    from rules.spec import RuleError, build_specs

    try:
        cfg = load_config(args.config).rules if args.config else RulesConfig()
        specs = build_specs(cfg)
    except (ConfigError, RuleError) as exc:
        print(exc, file=sys.stderr)
        return 2
    for s in specs:
        state = "on " if s.enabled else "off"
        print(
            f"{state} {s.id:26} {s.kind:11} {s.severity:8} {' > '.join(s.receivers):32} {s.title}"
        )
    return 0
