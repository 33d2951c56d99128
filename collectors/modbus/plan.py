"""Pure planning of the reads of a device: compiled points and merged request blocks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from collectors.modbus.decode import (
    DataType,
    DecodeError,
    Encoding,
    Order,
    Table,
    decode_bit,
    decode_registers,
)
from gateway.config.modbus import ProfileSpec, ReportSpec

MAX_REGISTERS = 125
MAX_BITS = 2000


@dataclass(frozen=True, slots=True)
class Point:
    metric: str
    table: Table
    address: int
    enc: Encoding
    report: ReportSpec
    poll_every: int = 1

    @property
    def width(self) -> int:
        return self.enc.type.width


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: `count` registers or bits of `table` from `start`."""

    table: Table
    start: int
    count: int
    points: tuple[Point, ...]
    poll_every: int = 1
    """Read on every n-th poll of the device only."""


def compile_points(
    profile: ProfileSpec, overrides: Mapping[str, ReportSpec] | None = None
) -> tuple[Point, ...]:
    overrides = overrides or {}
    return tuple(
        Point(
            metric=p.metric,
            table=Table(p.table),
            address=p.address,
            enc=Encoding(
                type=DataType(p.type),
                word_order=Order(p.word_order),
                byte_order=Order(p.byte_order),
                scale=p.scale,
                offset=p.offset,
            ),
            report=overrides.get(p.metric) or p.report or profile.report,
            poll_every=p.poll_every,
        )
        for p in profile.points
    )


def plan_blocks(
    points: Iterable[Point], max_gap: int = 10, max_registers: int = MAX_REGISTERS
) -> tuple[Block, ...]:
    """Merge points of one table into as few requests as possible.

    Two neighbours share a request when the unused span between them is at most `max_gap`
    registers (bits: 16 × that) and the request stays within `max_registers` (bits: 2000).
    Only points read equally often (`poll_every`) share a request.
    """
    if not 1 <= max_registers <= MAX_REGISTERS:
        raise ValueError(f"max_registers must be 1…{MAX_REGISTERS}")
    by_table: dict[tuple[Table, int], list[Point]] = {}
    for p in points:
        by_table.setdefault((p.table, p.poll_every), []).append(p)
    blocks: list[Block] = []
    for (table, every), unsorted in sorted(
        by_table.items(), key=lambda kv: (list(Table).index(kv[0][0]), kv[0][1])
    ):
        pts = sorted(unsorted, key=lambda p: p.address)
        limit = MAX_BITS if table.is_bits else max_registers
        gap = max_gap * 16 if table.is_bits else max_gap
        start = end = -1
        members: list[Point] = []
        for p in pts:
            p_end = p.address + p.width
            if members and p.address - end <= gap and max(end, p_end) - start <= limit:
                end = max(end, p_end)
                members.append(p)
                continue
            if members:
                blocks.append(Block(table, start, end - start, tuple(members), every))
            start, end, members = p.address, p_end, [p]
        if members:
            blocks.append(Block(table, start, end - start, tuple(members), every))
    return tuple(blocks)


def decode_block(
    block: Block, values: Sequence[int] | Sequence[bool]
) -> tuple[list[tuple[str, float]], list[tuple[str, str]]]:
    """Values of the block's points, and (metric, reason) for those that did not decode."""
    if len(values) < block.count:
        raise DecodeError(f"{len(values)} values for a request of {block.count}")
    good: list[tuple[str, float]] = []
    bad: list[tuple[str, str]] = []
    for p in block.points:
        i = p.address - block.start
        try:
            if block.table.is_bits:
                good.append((p.metric, decode_bit(values[i], p.enc)))
            else:
                regs = [int(v) for v in values[i : i + p.width]]
                good.append((p.metric, decode_registers(regs, p.enc)))
        except DecodeError as exc:
            bad.append((p.metric, str(exc)))
    return good, bad
