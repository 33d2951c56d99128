"""Load one gateway's YAML configuration, with every error tied to its file, line and key.

Values may come from the environment and from files:
- `${NAME}` anywhere in a string is replaced by the environment variable NAME (an error if it is
  not set); `${NAME:-default}` falls back to `default`; `$${` stands for a literal `${`.
- `!file path/to/secret` reads the value from a file (relative paths are relative to the
  configuration file; surrounding whitespace is stripped), e.g.
  `card_key: !file ${CREDENTIALS_DIRECTORY}/card_key`.

All problems of a file are reported together in one `ConfigError`.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from gateway.config.root import ID_PATTERN, GatewayConfig
from gateway.model import Catalog, DeviceInfo

M = TypeVar("M", bound=BaseModel)

Loc = tuple[str | int, ...]

FILE_TAG = "!file"
_ENV = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_WORDS = ("key", "password", "secret", "token")
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a configuration file."""

    file: Path
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration file cannot be used; `problems` lists every reason."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.problems = sorted(problems, key=lambda p: p.line or 0)
        n = len(problems)
        head = f"{path}: {n} configuration error{'s' if n != 1 else ''}:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


def format_loc(loc: Iterable[str | int]) -> str:
    """`("mqtt", "gates", 2, "id")` -> `mqtt.gates[2].id`."""
    out = ""
    for el in loc:
        if isinstance(el, int):
            out += f"[{el}]"
        else:
            out += f".{el}" if out else str(el)
    return out


class _Doc:
    """The YAML document turned into plain data, remembering the line of every key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[Loc, int] = {}
        self.problems: list[Problem] = []
        self.bad: set[Loc] = set()
        self.id_lines: list[tuple[Loc, str, int]] = []
        self._open: set[int] = set()  # collections being built: an alias to one is a cycle

    def problem(self, loc: Loc, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.path, line, format_loc(loc), message))
        self.bad.add(loc)

    def build(self, loader: yaml.SafeLoader, node: yaml.Node, loc: Loc) -> Any:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.CollectionNode):
            if id(node) in self._open:
                self.problem(
                    loc,
                    self.lines.get(loc, line),
                    "an alias refers to a mapping or list containing it",
                )
                return None
            self._open.add(id(node))
            try:
                return self._collection(loader, node, loc)
            finally:
                self._open.discard(id(node))
        assert isinstance(node, yaml.ScalarNode)
        if node.tag == FILE_TAG:
            return self._read_file(self._substitute(str(node.value), loc, line), loc, line)
        if node.tag == _STR_TAG:
            value = self._substitute(str(node.value), loc, line)
            if loc and loc[-1] == "id":
                self.id_lines.append((loc, value, line))
            return value
        if node.tag.startswith("!"):
            self.problem(loc, line, f"unknown tag {node.tag}: use `!file PATH` or `${{NAME}}`")
            return None
        try:
            return loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self.problem(loc, line, f"cannot read this value: {exc.problem}")
            return None

    def _collection(self, loader: yaml.SafeLoader, node: yaml.CollectionNode, loc: Loc) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(loader, node, loc)
        out: list[Any] = []
        for i, item in enumerate(node.value):
            self.lines[(*loc, i)] = item.start_mark.line + 1
            out.append(self.build(loader, item, (*loc, i)))
        return out

    def _mapping(self, loader: yaml.SafeLoader, node: yaml.MappingNode, loc: Loc) -> Any:
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        merged: list[tuple[Any, Any]] = []
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for src in sources:
                    if isinstance(src, yaml.MappingNode):
                        merged.extend(self._mapping(loader, src, loc).items())
                    else:
                        self.problem(loc, line, "`<<` merges only mappings")
                continue
            key = self.build(loader, key_node, loc)
            if not isinstance(key, str | int | float | bool) and key is not None:
                self.problem(loc, line, f"a key must be a plain value, found {key!r}")
                continue
            if key in first_line:
                self.problem(
                    (*loc, str(key)),
                    line,
                    f"duplicate key `{key}` (also on line {first_line[key]}); keep only one",
                )
                continue
            first_line[key] = line
            child = (*loc, key if isinstance(key, str) else str(key))
            self.lines[child] = line
            out[key] = self.build(loader, value_node, child)
        for key, value in merged:
            out.setdefault(key, value)
        return out

    def _substitute(self, text: str, loc: Loc, line: int) -> str:
        if "$" not in text:
            return text

        def repl(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            name, default = m.group(1), m.group(2)
            value = os.environ.get(name)
            if value is not None:
                return value
            if default is not None:
                return default
            self.problem(
                loc,
                line,
                f"environment variable {name} is not set: set it, "
                f"or give a default as ${{{name}:-default}}",
            )
            return ""

        return _ENV.sub(repl, text)

    def _read_file(self, name: str, loc: Loc, line: int) -> str:
        target = Path(name)
        if not target.is_absolute():
            target = self.path.parent / target
        try:
            return target.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.problem(
                loc, line, f"cannot read the file given by !file {target}: {reason}; fix the path"
            )
            return ""

    def line_of(self, loc: Loc) -> tuple[Loc, int | None]:
        """The deepest part of `loc` present in the file, and its line."""
        found: Loc = ()
        for i in range(len(loc), 0, -1):
            if loc[:i] in self.lines:
                found = loc[:i]
                break
        return found, self.lines.get(found, 1)


def load_model(path: str | Path, model: type[M]) -> tuple[M, _Doc]:
    """Read, substitute and validate a YAML file as `model`; raise `ConfigError` on any problem."""
    path = Path(path)
    doc = _Doc(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            path, [Problem(path, None, "", f"cannot read the configuration file: {reason}")]
        ) from None
    data = _parse(doc, text)
    if not isinstance(data, dict):
        found = {type(None): "an empty file", list: "a list", str: "text"}.get(
            type(data), f"a single value ({data!r})"
        )
        doc.problems.append(
            Problem(
                path,
                1,
                "",
                f"the configuration must be a mapping of sections "
                f"({', '.join(f'{k}:' for k in list(model.model_fields)[:2])}, ...), found {found}",
            )
        )
        raise ConfigError(path, doc.problems)
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            _add_validation_problem(doc, model, err)
        raise ConfigError(path, doc.problems) from None
    if doc.problems:
        raise ConfigError(path, doc.problems)
    return config, doc


def load_config(path: str | Path, *, model: type[GatewayConfig] = GatewayConfig) -> GatewayConfig:
    """Read, substitute and validate a building's configuration file, and check that its
    devices make a catalogue; raise `ConfigError` on any problem."""
    path = Path(path)
    config, doc = load_model(path, model)
    try:
        build_catalog(config)
    except CatalogError as exc:
        doc.problems.append(Problem(path, doc.lines.get((exc.section,)), exc.section, str(exc)))
        raise ConfigError(path, doc.problems) from None
    except DuplicateDeviceError as exc:
        for device, first, second in exc.duplicates:
            lines = [ln for loc, value, ln in doc.id_lines if value == device]
            where = f" (lines {', '.join(map(str, lines))})" if lines else ""
            places = f"in `{first}`" if first == second else f"in `{first}` and in `{second}`"
            doc.problems.append(
                Problem(
                    path,
                    lines[1] if len(lines) > 1 else (lines[0] if lines else None),
                    second,
                    f"device id `{device}` is declared twice, {places}{where}; "
                    "device ids must be unique in the building",
                )
            )
        raise ConfigError(path, doc.problems) from None
    return config


def _parse(doc: _Doc, text: str) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else doc.build(loader, node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        col = f", column {mark.column + 1}" if mark else ""
        doc.problems.append(
            Problem(
                doc.path,
                mark.line + 1 if mark else None,
                "",
                f"YAML syntax error{col}: {what}",
            )
        )
        raise ConfigError(doc.path, doc.problems) from None
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(doc.path, None, "", f"YAML error: {exc}"))
        raise ConfigError(doc.path, doc.problems) from None
    finally:
        loader.dispose()


def _add_validation_problem(doc: _Doc, model: type[BaseModel], err: ErrorDetails) -> None:
    loc: Loc = tuple(err["loc"])
    found_loc, line = doc.line_of(loc)
    if any(found_loc[:i] in doc.bad for i in range(len(found_loc) + 1)):
        return  # already reported (a missing variable or unreadable file)
    kind = err["type"]
    key_loc: Loc = found_loc
    if kind in ("missing", "extra_forbidden") and loc:
        key_loc = (*_present_prefix(doc, loc[:-1]), loc[-1])
    key = format_loc(key_loc)
    if kind == "missing":
        parent = format_loc(_present_prefix(doc, loc[:-1])) or "the top level"
        message = f"required key `{loc[-1]}` is missing: add it under {parent}"
    elif kind == "extra_forbidden":
        known = sorted(_fields_at(model, loc[:-1]))
        message = f"unknown key `{loc[-1]}`"
        best = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        if best:
            message += f"; did you mean `{best[0]}`?"
        if known:
            message += f" (known keys: {', '.join(known)})"
    else:
        message = _expectation(err)
        if kind != "value_error" or repr(err.get("input")) not in message:
            message += _found(err, key_loc)
    doc.problems.append(Problem(doc.path, line, key, message))


def _present_prefix(doc: _Doc, loc: Loc) -> Loc:
    """`loc` without the elements that are not keys in the file (pydantic's union tags)."""
    out: Loc = ()
    for el in loc:
        if (*out, el) in doc.lines:
            out = (*out, el)
    return out


def _expectation(err: ErrorDetails) -> str:
    kind, msg = err["type"], err["msg"]
    ctx = err.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        hint = " (1 to 32 of a-z, 0-9 and -)" if pattern == ID_PATTERN else ""
        return f"expected text matching {pattern}{hint}"
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        noun = "characters" if isinstance(err.get("input"), str) else "items"
        if "short" in kind:
            return f"expected at least {ctx.get('min_length')} {noun}"
        return f"expected at most {ctx.get('max_length')} {noun}"
    if kind == "value_error":
        return str(msg).removeprefix("Value error, ")
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}"
    if kind == "enum":
        return f"expected one of {ctx.get('expected', '')}"
    text = re.sub(
        r"^(Input|String|Value|List|Tuple|Dictionary|Set) should (be |have )?", "expected ", msg
    )
    return text if text != msg else f"invalid: {msg}"


def _found(err: ErrorDetails, loc: Loc) -> str:
    value = err.get("input")
    if isinstance(value, dict | list):
        return f"; found a {'mapping' if isinstance(value, dict) else 'list'}"
    name = str(loc[-1]).lower() if loc else ""
    if any(w in name for w in _SECRET_WORDS) and value not in (None, ""):
        return "; found a value (hidden: it is a secret)"
    shown = repr(value)
    return f"; found {shown if len(shown) <= 80 else shown[:77] + '...'}"


def _fields_at(model: type[BaseModel], loc: Loc) -> set[str]:
    """Known keys of the model that `loc` points into (best effort through lists, dicts, unions)."""
    candidates: list[Any] = [model]
    for el in loc:
        nxt: list[Any] = []
        for t in _expand(candidates):
            if isinstance(t, type) and issubclass(t, BaseModel):
                if isinstance(el, str) and el in t.model_fields:
                    nxt.append(t.model_fields[el].annotation)
            elif typing.get_origin(t) in (list, tuple, set, frozenset) and isinstance(el, int):
                nxt.extend(typing.get_args(t)[:1])
            elif typing.get_origin(t) is dict:
                nxt.extend(typing.get_args(t)[1:2])
        candidates = nxt or candidates  # an element matching nothing is a union tag: skip it
    return {f for t in _expand(candidates) if _is_model(t) for f in t.model_fields}


def _is_model(t: Any) -> typing.TypeGuard[type[BaseModel]]:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _expand(types_: list[Any]) -> Iterator[Any]:
    for t in types_:
        origin = typing.get_origin(t)
        if origin is typing.Annotated:
            yield from _expand([typing.get_args(t)[0]])
        elif origin in (typing.Union, types.UnionType):
            yield from _expand(list(typing.get_args(t)))
        else:
            yield t


class CatalogError(ValueError):
    """A section could not list its devices."""

    def __init__(self, section: str, reason: str) -> None:
        self.section = section
        super().__init__(f"cannot list the devices of `{section}`: {reason}")


class DuplicateDeviceError(ValueError):
    """Device ids declared more than once: (device, first section, second section)."""

    def __init__(self, duplicates: list[tuple[str, str, str]]) -> None:
        self.duplicates = duplicates
        super().__init__(
            "; ".join(f"device id {d!r} is declared in {a} and in {b}" for d, a, b in duplicates)
        )


def build_catalog(config: GatewayConfig) -> Catalog:
    """The building's devices, from every section that has `catalog_entries()`.

    Raises `DuplicateDeviceError` naming the sections that declare the same id twice, and
    `CatalogError` when a section fails to list its devices."""
    catalog = Catalog(config.building.id)
    owner: dict[str, str] = {}
    duplicates: list[tuple[str, str, str]] = []
    for name in type(config).model_fields:
        entries = getattr(getattr(config, name), "catalog_entries", None)
        if not callable(entries):
            continue
        try:
            infos: list[DeviceInfo] = list(entries())
        except (ValueError, TypeError, KeyError, LookupError) as exc:
            raise CatalogError(name, str(exc)) from exc
        for info in infos:
            if info.id in owner:
                duplicates.append((info.id, owner[info.id], name))
                continue
            owner[info.id] = name
            catalog.add(info)
    if duplicates:
        raise DuplicateDeviceError(duplicates)
    return catalog
