"""The rule engine and the alert lifecycle (shared/spec/alerts.md)."""
