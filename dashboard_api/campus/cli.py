"""`campus-edge campus --config campus.yaml`: run the campus view.

Register with `register(commands)` (module `dashboard_api.campus.cli`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.commands import Commands

if TYPE_CHECKING:
    from gateway.config.campus import CampusViewConfig


class CampusConfigError(Exception):
    """The campus view's configuration cannot be used; the message says why and where."""


def register(commands: Commands) -> None:
    p = commands.top.add_parser("campus", help="run the campus view (all buildings' cockpit)")
    p.add_argument("--config", "-c", required=True, type=Path, help="the campus view's YAML file")
    p.add_argument("--check", action="store_true", help="validate the file, start nothing")
    p.set_defaults(func=cmd_campus)


def load_campus_config(path: Path) -> CampusViewConfig:
    """Read and validate a campus view configuration (same `${ENV}` and `!file` rules, and
    the same file:line:key error messages, as a building's configuration)."""
    from gateway.config.campus import CampusViewConfig  # noqa: PLC0415
    from gateway.config.loader import ConfigError, load_model  # noqa: PLC0415

    try:
        return load_model(path, CampusViewConfig)[0]
    except ConfigError as exc:
        raise CampusConfigError(str(exc)) from None


def cmd_campus(args: argparse.Namespace) -> int:
    try:
        config = load_campus_config(args.config)
    except CampusConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: OK ({len(config.users)} users, broker {config.broker.host})")
        return 0
    if not config.users:
        print(f"{args.config}: users: at least one user is needed", file=sys.stderr)
        return 2
    from dashboard_api.campus.app import create_campus_app  # noqa: PLC0415
    from dashboard_api.server import serve_forever  # noqa: PLC0415

    serve_forever(create_campus_app(config), host=config.host, port=config.port)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m dashboard_api.campus.cli campus --config ...` (what `campus-edge campus`
    runs once `gateway.cli.REGISTRARS` lists this module)."""
    parser = argparse.ArgumentParser(prog="campus-edge")
    top = parser.add_subparsers(dest="command", required=True)
    register(Commands(top=top, simulate=top))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
