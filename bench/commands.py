"""What a signed command costs: signing in the cloud, verifying in the car.

    python -m bench.commands [--commands 2000] [--runs 5]

Each run signs ``--commands`` fresh commands (own nonce each) and verifies them in a new
``CommandVerifier``: the first verification checks the signer's certificate against the fleet CA
(then cached), every one checks the Ed25519 signature, VIN, validity and nonce. With the nonce
record on disk (what the vehicle process does: one atomic, fsynced write per accepted command) and
without it (the check alone). Medians of the runs, microseconds per command.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from opensdv.cloud.fleet.identities import FleetCa
from opensdv.link.signing import CommandSigner, CommandVerifier

console = Console()
VIN = "JN1BENCH0AA000001"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"


def _run(directory: Path, commands: int) -> dict[str, float]:
    signer = CommandSigner(directory / "command-signer.key", directory / "command-signer.pem")
    started = time.perf_counter()
    payloads = [signer.sign(signer.command(VIN, "Nissan", "ops", LIMIT, 80)) for _ in range(commands)]
    sign_us = (time.perf_counter() - started) * 1e6 / commands
    results = {"sign_us": sign_us}
    for name, seen in (("memory", None), ("disk", directory / f"seen-{time.time_ns()}.json")):
        verifier = CommandVerifier(VIN, directory / "ca.pem", seen)
        started = time.perf_counter()
        verifier.verify(payloads[0])
        results[f"first_{name}_us"] = (time.perf_counter() - started) * 1e6
        started = time.perf_counter()
        for payload in payloads[1:]:
            verifier.verify(payload)
        results[f"verify_{name}_us"] = (time.perf_counter() - started) * 1e6 / (commands - 1)
    return results


def main(argv: list[str]) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m bench.commands")
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ca = FleetCa.init(Path(tmp) / "ca")
        ca.command_key(Path(tmp))
        (Path(tmp) / "ca.pem").write_bytes(ca.cert_file.read_bytes())
        runs = [_run(Path(tmp), args.commands) for _ in range(args.runs)]
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    table = Table(
        "step", "µs per command (median)", "range", title=f"{args.runs} runs of {args.commands:,} commands"
    )
    labels = {
        "sign_us": "cloud: sign",
        "first_memory_us": "car: first command (signer certificate checked)",
        "verify_memory_us": "car: verify (signature, VIN, validity, nonce)",
        "first_disk_us": "car: first command, nonce record on disk",
        "verify_disk_us": "car: verify + nonce written (fsync)",
    }
    for key, label in labels.items():
        values = [run[key] for run in runs]
        table.add_row(label, f"{medians[key]:,.0f}", f"{min(values):,.0f}-{max(values):,.0f}")
    console.print(table)
    return medians


if __name__ == "__main__":
    main(sys.argv[1:])
