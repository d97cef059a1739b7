"""Battery health: state of health (from the twin and from telemetry), second-life grading and
battery passports."""
