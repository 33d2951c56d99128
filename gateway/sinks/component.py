"""Upstream sinks as supervised components (influxdb-client is imported only when enabled)."""

from __future__ import annotations

from gateway.runtime import Component, ConfigurationError, Runtime


def build_components(runtime: Runtime) -> list[Component]:
    config = runtime.config.upstream
    if not config.enabled:
        return []
    north: list[Component] = []
    if config.northbound.enabled:
        from gateway.sinks.northbound import NorthboundSink  # noqa: PLC0415

        north.append(NorthboundSink(runtime, config.northbound))
    if not config.timeseries:
        return north
    # Imported here: influxdb-client costs ~25 MB, paid only when forwarding is on.
    from gateway.sinks.influx import InfluxWriter, UpstreamSink  # noqa: PLC0415
    from gateway.sinks.line_protocol import LineFormatter  # noqa: PLC0415
    from gateway.sinks.upstream_backlog import BacklogAlarm  # noqa: PLC0415

    storage = runtime.config.storage
    if not storage.outbox:
        raise ConfigurationError(
            "upstream.enabled is true but storage.outbox is false: nothing would be forwarded; "
            "set storage.outbox: true (or upstream.enabled: false)"
        )
    if config.high_water >= storage.outbox_max_rows:
        raise ConfigurationError(
            f"upstream.high_water ({config.high_water}) must be below storage.outbox_max_rows "
            f"({storage.outbox_max_rows}), or the outbox sheds readings before anyone is warned"
        )
    formatter = LineFormatter(
        building=runtime.config.building.id,
        catalog=runtime.catalog,
        location_tags=config.location_tags,
        event_string_fields=config.event_string_fields,
        event_fields_exclude=frozenset(config.event_fields_exclude),
        max_line_bytes=config.max_line_bytes,
    )
    alarm = BacklogAlarm(
        high_water=config.high_water,
        low_water=config.effective_low_water,
        store=runtime.store,
        clock=runtime.clock,
        metrics=runtime.metrics,
    )
    sink = UpstreamSink(
        config,
        outbox=runtime.store,
        formatter=formatter,
        writer=InfluxWriter(config),
        clock=runtime.clock,
        metrics=runtime.metrics,
        health=runtime.health,
        alarm=alarm,
    )
    return [sink, *north]
