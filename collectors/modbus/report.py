"""Pure report strategies: which polled samples are worth storing."""

from __future__ import annotations

from gateway.config.modbus import ReportSpec


class ReportFilter:
    """Remembers the last stored sample of each metric of one device."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}

    def offer(self, spec: ReportSpec, metric: str, value: float, ts_ms: int) -> bool:
        """Whether to store this sample (and if so, remember it as the last stored)."""
        last = self._last.get(metric)
        if spec.mode == "every_poll" or last is None:
            keep = True
        else:
            last_value, last_ts = last
            delta = abs(value - last_value)
            changed = delta > spec.deadband if spec.deadband > 0 else value != last_value
            due = spec.mode == "on_change_or_every" and ts_ms - last_ts >= spec.every_s * 1000
            keep = changed or due
        if keep:
            self._last[metric] = (value, ts_ms)
        return keep

    def reset(self) -> None:
        """Forget everything: the next sample of every metric is stored (e.g. after an outage)."""
        self._last.clear()
