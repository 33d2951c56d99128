"""Simulated Modbus devices of a building: room power meters and floor safety modules."""
