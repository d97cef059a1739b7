"""Run every benchmark: ``python -m bench`` (or ``make bench``)."""

from __future__ import annotations

import sys

from bench import broker, campaigns, can, commands, ota, twin, twin_validation

BENCHMARKS = {
    "broker": broker.main,
    "campaigns": campaigns.main,
    "can": can.main,
    "commands": commands.main,
    "ota": ota.main,
    "twin": twin.main,
    "twin_validation": twin_validation.main,
}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(BENCHMARKS)
    for name in chosen:
        if name not in BENCHMARKS:
            sys.exit(f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
        BENCHMARKS[name]([])
