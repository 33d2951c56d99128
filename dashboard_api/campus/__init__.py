"""The campus view: the cockpit across buildings, fed by their northbound MQTT topics.

The app is `dashboard_api.campus.app.create_campus_app`; this package imports nothing at
start so the CLI stays light.
"""
