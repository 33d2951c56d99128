"""`campus-edge users ...` and `campus-edge tokens ...`: there is no default password; the first
admin is created here."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.commands import Commands

if TYPE_CHECKING:
    from dashboard_api.auth import Accounts
    from gateway.config.root import GatewayConfig

ROLES = ("viewer", "operator", "counsellor", "admin")


def register(commands: Commands) -> None:
    users = commands.top.add_parser("users", help="cockpit users (the first admin is made here)")
    sub = users.add_subparsers(dest="users_command", metavar="ACTION")
    users.set_defaults(func=_help(users))

    add = sub.add_parser("add", help="add a user; prints a generated password unless one is given")
    add.add_argument("--config", "-c", required=True, type=Path, help="the building's YAML file")
    add.add_argument("--name", required=True, help="login name")
    add.add_argument("--role", required=True, choices=ROLES)
    how = add.add_mutually_exclusive_group()
    how.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    how.add_argument("--prompt", action="store_true", help="ask for the password on the terminal")
    add.set_defaults(func=cmd_users_add)

    ls = sub.add_parser("list", help="list users")
    ls.add_argument("--config", "-c", required=True, type=Path)
    ls.set_defaults(func=cmd_users_list)

    passwd = sub.add_parser(
        "passwd",
        help="set a user's password and end their sessions; prints a generated password"
        " unless one is given",
    )
    passwd.add_argument("--config", "-c", required=True, type=Path, help="the building's YAML file")
    passwd.add_argument("--name", required=True, help="login name")
    how = passwd.add_mutually_exclusive_group()
    how.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    how.add_argument("--prompt", action="store_true", help="ask for the password on the terminal")
    passwd.set_defaults(func=cmd_users_passwd)

    for action, enabled, text in (
        ("disable", False, "disable a user (who left): no login, their sessions end"),
        ("enable", True, "let a disabled user log in again"),
    ):
        onoff = sub.add_parser(action, help=text)
        onoff.add_argument("--config", "-c", required=True, type=Path)
        onoff.add_argument("--name", required=True, help="login name")
        onoff.set_defaults(func=cmd_users_enable if enabled else cmd_users_disable)

    tokens = commands.top.add_parser("tokens", help="API tokens for integrators")
    tsub = tokens.add_subparsers(dest="tokens_command", metavar="ACTION")
    tokens.set_defaults(func=_help(tokens))
    tadd = tsub.add_parser("add", help="create an API token (printed once)")
    tadd.add_argument("--config", "-c", required=True, type=Path)
    tadd.add_argument("--label", required=True, help="who or what uses it, e.g. campus-bi")
    tadd.add_argument("--role", default="viewer", choices=ROLES)
    tadd.add_argument(
        "--days", type=int, default=None, help="lifetime (default: api.token_ttl_days)"
    )
    tadd.set_defaults(func=cmd_tokens_add)


def _help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(_: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show


def _load(path: Path) -> GatewayConfig | None:
    from gateway.config.loader import ConfigError, load_config  # noqa: PLC0415

    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


Work = Callable[["Accounts"], Awaitable[int]]


async def _with_accounts(config: GatewayConfig, work: Work) -> int:
    from dashboard_api.auth import Accounts  # noqa: PLC0415
    from gateway.clock import SystemClock  # noqa: PLC0415
    from gateway.metrics import Metrics  # noqa: PLC0415
    from gateway.storage.store import Store  # noqa: PLC0415

    store = await Store.open(config.storage, SystemClock(), Metrics())
    try:
        accounts = Accounts(
            store,
            SystemClock(),
            session_ttl_s=config.api.session_ttl_s,
            max_failures=config.api.login.max_failures,
            window_s=config.api.login.window_s,
        )
        return await work(accounts)
    finally:
        await store.close()


def _change(
    config: GatewayConfig,
    command: str,
    change: Callable[[Accounts], Awaitable[object]],
    refused: tuple[type[Exception], ...],
) -> int:
    """Run one account change; an expected refusal is said on stderr with exit code 1."""

    async def work(accounts: Accounts) -> int:
        try:
            await change(accounts)
        except refused as exc:
            print(f"campus-edge users {command}: {exc}", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(_with_accounts(config, work))


def _password(args: argparse.Namespace, command: str) -> str | None:
    """The password of `--password-stdin`, `--prompt` (asked twice), or a generated one;
    None (said why) if the two typed differ."""
    from dashboard_api.auth import MIN_PASSWORD, generate_password  # noqa: PLC0415

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if args.prompt:
        password = getpass.getpass(f"password for {args.name} (≥ {MIN_PASSWORD} characters): ")
        if getpass.getpass("again: ") != password:
            print(f"campus-edge users {command}: the passwords differ", file=sys.stderr)
            return None
        return password
    return generate_password()


def _print_password(args: argparse.Namespace, password: str) -> None:
    if not (args.password_stdin or args.prompt):
        print(f"password: {password}")
        print("(shown once: give it to the user, who should keep it safe)")


def cmd_users_add(args: argparse.Namespace) -> int:
    from dashboard_api.auth import BadName, PasswordTooShort, Role, UserExists  # noqa: PLC0415

    config = _load(args.config)
    if config is None:
        return 2
    password = _password(args, "add")
    if password is None:
        return 1
    role = Role(args.role)
    code = _change(
        config,
        "add",
        lambda accounts: accounts.add_user(args.name, role, password, actor="cli"),
        (PasswordTooShort, UserExists, BadName),
    )
    if code == 0:
        print(f"user {args.name} ({args.role}) added")
        _print_password(args, password)
    return code


def cmd_users_passwd(args: argparse.Namespace) -> int:
    from dashboard_api.auth import PasswordTooShort, UnknownUser  # noqa: PLC0415

    config = _load(args.config)
    if config is None:
        return 2
    password = _password(args, "passwd")
    if password is None:
        return 1
    code = _change(
        config,
        "passwd",
        lambda accounts: accounts.set_password(args.name, password, actor="cli"),
        (PasswordTooShort, UnknownUser),
    )
    if code == 0:
        print(f"password of {args.name} changed; their sessions are ended")
        _print_password(args, password)
    return code


def cmd_users_disable(args: argparse.Namespace) -> int:
    return _set_enabled(args, enabled=False)


def cmd_users_enable(args: argparse.Namespace) -> int:
    return _set_enabled(args, enabled=True)


def _set_enabled(args: argparse.Namespace, *, enabled: bool) -> int:
    from dashboard_api.auth import LastAdmin, UnknownUser  # noqa: PLC0415

    config = _load(args.config)
    if config is None:
        return 2
    action = "enable" if enabled else "disable"
    code = _change(
        config,
        action,
        lambda accounts: accounts.set_enabled(args.name, enabled, actor="cli"),
        (UnknownUser, LastAdmin),
    )
    if code == 0:
        print(f"user {args.name} {action}d")
    return code


def cmd_users_list(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2

    async def show(accounts: Accounts) -> int:
        for u in await accounts.users():
            flag = " (disabled)" if u.disabled else ""
            print(f"{u.name}\t{u.role}{flag}")
        return 0

    return asyncio.run(_with_accounts(config, show))


def cmd_tokens_add(args: argparse.Namespace) -> int:
    from dashboard_api.auth import Role  # noqa: PLC0415

    config = _load(args.config)
    if config is None:
        return 2
    days = args.days or config.api.token_ttl_days

    async def add(accounts: Accounts) -> int:
        secret, row = await accounts.create_token(args.label, Role(args.role), days, "cli")
        print(f"token {row.id} for {row.label} ({row.role}), expires in {days} days:")
        print(secret)
        return 0

    return asyncio.run(_with_accounts(config, add))
