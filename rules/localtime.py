"""The building's local time for schedules: windows such as [23:00, 06:00) and daily times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOUR_MS = 3_600_000


def parse_hhmm(text: str) -> int:
    """Minutes after local midnight of `HH:MM`."""
    try:
        hh, mm = str(text).split(":")
        minutes = int(hh) * 60 + int(mm)
    except ValueError:
        raise ValueError(f"time {text!r} is not HH:MM") from None
    if not 0 <= minutes < 24 * 60:
        raise ValueError(f"time {text!r} is outside 00:00..23:59")
    return minutes


class LocalClock:
    """Converts epoch ms to the building's wall clock; UTC offsets are cached per hour."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self._offsets: dict[int, int] = {}

    def offset_ms(self, ts_ms: int) -> int:
        hour = ts_ms // _HOUR_MS
        off = self._offsets.get(hour)
        if off is None:
            dt = datetime.fromtimestamp(hour * 3600, tz=self.zone)
            delta = dt.utcoffset() or timedelta(0)
            off = int(delta.total_seconds() * 1000)
            if len(self._offsets) > 10_000:
                self._offsets.clear()
            self._offsets[hour] = off
        return off

    def minute_of_day(self, ts_ms: int) -> int:
        return ((ts_ms + self.offset_ms(ts_ms)) // 60_000) % 1440

    def local(self, ts_ms: int) -> datetime:
        return datetime.fromtimestamp(ts_ms / 1000, tz=self.zone)

    def text(self, ts_ms: int) -> str:
        return self.local(ts_ms).strftime("%Y-%m-%d %H:%M:%S")

    def to_ms(self, day: date, minutes: int) -> int:
        naive = datetime.combine(day, time(minutes // 60, minutes % 60))
        return int(naive.replace(tzinfo=self.zone).timestamp() * 1000)

    def parse(self, text: str) -> int:
        """ISO 8601 date-time; without an offset it is local time."""
        dt = datetime.fromisoformat(str(text).strip())
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self.zone)
        return int(dt.astimezone(UTC).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Window:
    """A daily local-time window including its start and excluding its end; may wrap midnight."""

    start: int
    end: int

    @classmethod
    def parse(cls, raw: dict[str, str]) -> Window:
        return cls(parse_hhmm(raw["start"]), parse_hhmm(raw["end"]))

    def contains(self, minute: int) -> bool:
        if self.start <= self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end


@dataclass(frozen=True, slots=True)
class DailySchedule:
    """A time of day on some weekdays, except on listed dates (holidays)."""

    minute: int
    days: frozenset[int]
    skip: frozenset[date]

    @classmethod
    def parse(cls, at: str, days: list[str] | None, skip: list[str]) -> DailySchedule:
        names = [d.lower()[:3] for d in (days or DAYS)]
        bad = [d for d in names if d not in DAYS]
        if bad:
            raise ValueError(f"unknown weekday(s) {bad}; use {', '.join(DAYS)}")
        return cls(
            parse_hhmm(at),
            frozenset(DAYS.index(d) for d in names),
            frozenset(date.fromisoformat(s) for s in skip),
        )

    def next_after(self, clock: LocalClock, ts_ms: int) -> int:
        """The first scheduled instant strictly after `ts_ms`."""
        day = clock.local(ts_ms).date()
        for _ in range(400):
            if day.weekday() in self.days and day not in self.skip:
                at = clock.to_ms(day, self.minute)
                if at > ts_ms:
                    return at
            day += timedelta(days=1)
        raise ValueError("the schedule has no day in the next 400 days")
