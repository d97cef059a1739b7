"""The back end: fleet, telemetry, OTA and energy services."""
