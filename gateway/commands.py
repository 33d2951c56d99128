"""How packages add subcommands to the `campus-edge` CLI.

Each package with commands has a `cli` module with `register(commands: Commands) -> None`.
Every parser it adds sets `func` (via `set_defaults`) to a callable taking the parsed
`argparse.Namespace` and returning the process exit code.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    SubParsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


@dataclass(frozen=True, slots=True)
class Commands:
    top: SubParsers
    """`campus-edge <command>`."""
    simulate: SubParsers
    """`campus-edge simulate <device-kind>`."""
