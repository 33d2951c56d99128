"""`campus-edge campus --config campus.yaml`: run the campus view.

Register with `register(commands)` (module `dashboard_api.campus.cli`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.commands import Commands

if TYPE_CHECKING:
    from gateway.config.campus import CampusViewConfig

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class CampusConfigError(Exception):
    """The campus view's configuration cannot be used; the message says why and where."""


def register(commands: Commands) -> None:
    p = commands.top.add_parser("campus", help="run the campus view (all buildings' cockpit)")
    p.add_argument("--config", "-c", required=True, type=Path, help="the campus view's YAML file")
    p.add_argument("--check", action="store_true", help="validate the file, start nothing")
    p.set_defaults(func=cmd_campus)


def _substitute(value: Any, path: Path) -> Any:
    if isinstance(value, str):

        def env(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise CampusConfigError(f"{path}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV.sub(env, value)
    if isinstance(value, dict):
        return {k: _substitute(v, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, path) for v in value]
    return value


def load_campus_config(path: Path) -> CampusViewConfig:
    """Read and validate a campus view configuration (`${ENV}` substituted in strings)."""
    import yaml  # noqa: PLC0415
    from pydantic import ValidationError  # noqa: PLC0415

    from gateway.config.campus import CampusViewConfig  # noqa: PLC0415

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CampusConfigError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise CampusConfigError(f"{path}: expected a mapping (broker:, users:, ...)")
    try:
        return CampusViewConfig.model_validate(_substitute(data, path))
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise CampusConfigError("\n".join(lines)) from None


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
    # uvicorn is the API's server (as in dashboard_api/server.py); imported only to serve.
    import uvicorn  # noqa: PLC0415

    from dashboard_api.campus.app import create_campus_app  # noqa: PLC0415

    uvicorn.run(
        create_campus_app(config),
        host=config.host,
        port=config.port,
        log_config=None,
        access_log=False,
    )
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
