"""Record MQTT traffic to JSON Lines and replay it in order."""
