"""The campus view: the cockpit across buildings, fed by their northbound MQTT topics."""

from dashboard_api.campus.app import create_campus_app

__all__ = ["create_campus_app"]
