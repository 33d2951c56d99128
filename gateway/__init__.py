"""campus-edge gateway core: configuration, runtime, data model, storage, sinks and CLI."""
