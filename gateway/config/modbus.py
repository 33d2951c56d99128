"""The `modbus:` section: converters, polling groups, device profiles and the devices behind them.

Meters and safety modules can be listed one by one (`devices`) or generated per floor
(`floors`, `safety`) with the id scheme of `ids`. Built-in profiles (`sdm120`, `dds238`,
`safety-io`) ship as data files in `collectors/modbus/profiles/`; `profiles` adds custom
register maps with the same schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from gateway.config.base import Section

if TYPE_CHECKING:
    from gateway.model import DeviceInfo

ID = r"^[a-z0-9-]{1,32}$"
METRIC = r"^[a-z][a-z0-9_]{0,47}$"


class ReportSpec(Section):
    mode: Literal["every_poll", "on_change", "on_change_or_every"] = "on_change_or_every"
    """`every_poll`: store every sample; `on_change`: only when it moved more than
    `deadband`; `on_change_or_every`: on change, and at least every `every_s` seconds."""
    deadband: float = Field(0.0, ge=0)
    """Smallest change (in the metric's unit) that counts as a change; 0: any change."""
    every_s: float = Field(60.0, gt=0)
    """Longest time between two stored samples in `on_change_or_every` mode."""


class PointSpec(Section):
    metric: str = Field(pattern=METRIC)
    """Metric name, e.g. `voltage`, `power`, `smoke`."""
    table: Literal["coil", "discrete", "holding", "input"]
    """Data table: coils (FC01), discrete inputs (FC02), holding registers (FC03) or input
    registers (FC04)."""
    address: int = Field(ge=0, le=0xFFFF)
    """0-based address of the (first) register or bit."""
    type: Literal["bool", "int16", "uint16", "int32", "uint32", "float32"] = "uint16"
    """Encoding; `bool` for coils and discrete inputs, which hold nothing else."""
    word_order: Literal["big", "little"] = "big"
    """For 32-bit values: `big` when the most significant register comes first."""
    byte_order: Literal["big", "little"] = "big"
    """`little` when the device swaps the two bytes of each register."""
    scale: float = 1.0
    """Engineering value = raw × scale + offset."""
    offset: float = 0.0
    """Added after scaling."""
    unit: str = ""
    """Unit of the engineering value, e.g. `V`, `kWh`, `°C`; empty for 0/1 states."""
    description: str = ""
    """What the value means."""
    report: ReportSpec | None = None
    """When to store a sample of this point; the profile's `report` when absent."""
    poll_every: int = Field(1, ge=1, le=3600)
    """Read this point on every n-th poll only (slow values such as total energy)."""

    @model_validator(mode="after")
    def _bool_iff_bits(self) -> PointSpec:
        bits = self.table in ("coil", "discrete")
        if bits != (self.type == "bool"):
            raise ValueError(
                f"point {self.metric!r}: coils and discrete inputs are `type: bool`, "
                "registers are not"
            )
        return self


class ProfileSpec(Section):
    kind: Literal["meter", "safety_io"] = "meter"
    """Device kind in the catalog."""
    description: str = ""
    """Which device this register map is modelled on."""
    report: ReportSpec = ReportSpec()
    """Default report strategy of the points."""
    points: list[PointSpec] = Field(min_length=1)
    """The values read from the device."""

    @model_validator(mode="after")
    def _unique_metrics(self) -> ProfileSpec:
        names = [p.metric for p in self.points]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metrics declared twice in one profile: {dupes}")
        return self


class ConverterSpec(Section):
    id: str = Field(pattern=ID)
    """Name of the Modbus TCP converter (gateway), e.g. `conv-3` for floor 3."""
    host: str
    """Host name or address of the converter."""
    port: int = Field(502, ge=1, le=65535)
    """TCP port."""
    timeout_s: float = Field(1.0, gt=0, le=60)
    """How long one request waits for its answer."""
    retries: int = Field(1, ge=0, le=5)
    """Extra attempts of a request that timed out (garbled answers and exceptions are not
    retried)."""
    backoff_min_s: float = Field(0.5, gt=0)
    """First wait before reconnecting after the connection failed; doubles up to `backoff_max_s`."""
    backoff_max_s: float = Field(30.0, gt=0)
    """Longest wait between reconnection attempts (each wait is jittered ±25 %)."""
    max_gap: int = Field(10, ge=0, le=124)
    """Unused registers (or bits) one request may read to merge two neighbouring blocks."""
    max_registers: int = Field(125, ge=1, le=125)
    """Most registers in one request (the protocol allows 125)."""


class GroupSpec(Section):
    interval_s: float = Field(2.0, gt=0)
    """Time between two polls of a device of this group."""
    jitter_s: float = Field(0.2, ge=0)
    """Each device's polls are offset by a random share of this, to spread the load."""
    offline_after: int = Field(3, ge=1)
    """Polls failed in a row after which a device is reported offline."""
    offline_poll_every: int = Field(5, ge=1)
    """An offline device is polled on every n-th round only, so a dead unit does not cost
    its converter a timeout every round."""
    report: dict[str, ReportSpec] = Field(default_factory=dict)
    """Report strategy per metric overriding the profiles', e.g. `{power: {deadband: 5}}`."""


class DeviceSpec(Section):
    id: str = Field(pattern=ID)
    """Device id, e.g. `m-3-12`."""
    converter: str = Field(pattern=ID)
    """Id of the converter the device hangs behind."""
    unit: int = Field(ge=0, le=255)
    """Modbus unit (slave) id on the converter's RS-485 bus."""
    profile: str
    """Built-in (`sdm120`, `dds238`, `safety-io`) or custom profile name."""
    group: str = "meters"
    """Polling group."""
    floor: int | None = None
    """Floor of the device."""
    room: str | None = None
    """Room the meter measures, e.g. `312`."""
    zone: str | None = None
    """Zone, for devices not tied to one room."""


class FloorMetersSpec(Section):
    floor: int = Field(ge=0, le=200)
    """Floor number."""
    converter: str = Field(pattern=ID)
    """Converter of the floor's meter bus."""
    rooms: int = Field(ge=1, le=247)
    """Rooms on the floor, numbered 1…rooms; room n has unit id `first_unit + n - 1`."""
    first_unit: int = Field(1, ge=1, le=247)
    """Unit id of the meter of room 1."""
    profile: str = "sdm120"
    """Profile of the floor's meters."""
    profile_by_room: dict[int, str] = Field(default_factory=dict)
    """Rooms whose meter has another profile, e.g. `{5: dds238}`."""
    group: str = "meters"
    """Polling group."""

    @model_validator(mode="after")
    def _units_fit(self) -> FloorMetersSpec:
        if self.first_unit + self.rooms - 1 > 247:
            raise ValueError(f"floor {self.floor}: unit ids would pass 247")
        return self


class SafetyModuleSpec(Section):
    floor: int = Field(ge=0, le=200)
    """Floor the module watches."""
    converter: str = Field(pattern=ID)
    """Converter the module hangs behind."""
    unit: int | None = Field(None, ge=1, le=247)
    """Unit id; the floor number when absent (as the spec says)."""
    profile: str = "safety-io"
    """Profile of the module."""
    group: str = "safety"
    """Polling group."""


class IdScheme(Section):
    meter: str = "m-{floor}-{room:02d}"
    """Device id of a generated meter (`floor`, `room` = number on the floor)."""
    room: str = "{floor}{room:02d}"
    """Room label of a generated meter, e.g. `312`."""
    safety: str = "safety-{floor}"
    """Device id of a generated safety module."""


def _default_groups() -> dict[str, GroupSpec]:
    return {
        "meters": GroupSpec(interval_s=2.0, jitter_s=0.2),
        "safety": GroupSpec(interval_s=1.0, jitter_s=0.1),
    }


class ModbusConfig(Section):
    enabled: bool = False
    """Whether the Modbus collector runs."""
    converters: list[ConverterSpec] = Field(default_factory=list)
    """Modbus TCP converters (one connection each; requests on one are serialised)."""
    groups: dict[str, GroupSpec] = Field(default_factory=_default_groups)
    """Polling groups by name: interval, jitter, offline threshold, report overrides."""
    profiles: dict[str, ProfileSpec] = Field(default_factory=dict)
    """Custom register maps by name, in addition to the built-in ones."""
    ids: IdScheme = IdScheme()
    """Id scheme of the devices generated by `floors` and `safety`."""
    floors: list[FloorMetersSpec] = Field(default_factory=list)
    """Room meters generated per floor."""
    safety: list[SafetyModuleSpec] = Field(default_factory=list)
    """Floor safety I/O modules."""
    devices: list[DeviceSpec] = Field(default_factory=list)
    """Further devices, listed one by one."""

    def all_devices(self) -> list[DeviceSpec]:
        """Every device: generated ones first, then those listed."""
        out: list[DeviceSpec] = []
        for f in self.floors:
            for n in range(1, f.rooms + 1):
                out.append(
                    DeviceSpec(
                        id=self.ids.meter.format(floor=f.floor, room=n),
                        converter=f.converter,
                        unit=f.first_unit + n - 1,
                        profile=f.profile_by_room.get(n, f.profile),
                        group=f.group,
                        floor=f.floor,
                        room=self.ids.room.format(floor=f.floor, room=n),
                    )
                )
        for s in self.safety:
            out.append(
                DeviceSpec(
                    id=self.ids.safety.format(floor=s.floor),
                    converter=s.converter,
                    unit=s.floor if s.unit is None else s.unit,
                    profile=s.profile,
                    group=s.group,
                    floor=s.floor,
                    zone=f"floor-{s.floor}",
                )
            )
        out.extend(self.devices)
        return out

    def all_profiles(self) -> dict[str, ProfileSpec]:
        """Built-in profiles, overridden and extended by the custom ones."""
        from collectors.modbus.profiles import builtin_profiles  # noqa: PLC0415

        return {**builtin_profiles(), **self.profiles}

    @model_validator(mode="after")
    def _references(self) -> ModbusConfig:
        conv_ids = [c.id for c in self.converters]
        if len(set(conv_ids)) != len(conv_ids):
            raise ValueError("modbus.converters: an id is used twice")
        known_conv = set(conv_ids)
        profiles = self.all_profiles()
        seen_ids: set[str] = set()
        seen_units: set[tuple[str, int]] = set()
        for d in self.all_devices():
            where = f"modbus device {d.id!r}"
            if d.id in seen_ids:
                raise ValueError(f"{where}: id is used twice")
            seen_ids.add(d.id)
            if d.converter not in known_conv:
                raise ValueError(f"{where}: unknown converter {d.converter!r} (see converters)")
            if (d.converter, d.unit) in seen_units:
                raise ValueError(f"{where}: unit {d.unit} on {d.converter} is already used")
            seen_units.add((d.converter, d.unit))
            if d.profile not in profiles:
                raise ValueError(
                    f"{where}: unknown profile {d.profile!r}; known: {sorted(profiles)}"
                )
            if d.group not in self.groups:
                raise ValueError(
                    f"{where}: unknown group {d.group!r}; known: {sorted(self.groups)}"
                )
        return self

    def catalog_entries(self) -> list[DeviceInfo]:
        """One catalog entry per meter and safety module, with its metrics and units."""
        from gateway.model import DeviceInfo, DeviceKind, MetricInfo  # noqa: PLC0415

        profiles = self.all_profiles()
        out: list[DeviceInfo] = []
        for d in self.all_devices():
            prof = profiles[d.profile]
            out.append(
                DeviceInfo(
                    id=d.id,
                    kind=DeviceKind(prof.kind),
                    floor=d.floor,
                    room=d.room,
                    zone=d.zone,
                    metrics=tuple(MetricInfo(p.metric, p.unit, p.description) for p in prof.points),
                    labels={"profile": d.profile, "converter": d.converter, "unit": d.unit},
                )
            )
        return out
