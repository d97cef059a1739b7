"""The command line starts at once: the root command, ``--version``, ``--help`` and every
``SUBCOMMAND --help`` import none of the heavy parts (the imports are measured, not the time)."""

from __future__ import annotations

import json
import subprocess
import sys

from opensdv.cli import SUBCOMMANDS

HEAVY = ("grpc", "fastapi", "duckdb", "numpy", "matplotlib", "alembic", "ocpp", "sqlalchemy", "amqtt", "yaml")

_PROBE = """
import json, sys
from opensdv.cli import app
for args in [["--version"], ["--help"], *([name, "--help"] for name in sys.argv[1:])]:
    try:
        app(args)
    except SystemExit:
        pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _imported(*subcommands: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *subcommands], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_help_and_version_import_nothing_heavy() -> None:
    loaded = _imported(*SUBCOMMANDS)
    assert not loaded & set(HEAVY), f"imported at start-up: {sorted(loaded & set(HEAVY))}"
    assert "opensdv" in loaded


def test_a_command_that_runs_imports_its_part() -> None:
    """The probe can see heavy imports: a command that needs numpy does import it."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from opensdv.cli import app\n"
         "try: app(['twin', 'range', 'nissan-leaf-40'])\nexcept SystemExit: pass\n"
         "print('numpy' in sys.modules)"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout.splitlines()[-1] == "True"


def test_help_texts_written_out_match_their_sources() -> None:
    from opensdv.cli.broker import DEFAULT_AUDIENCE
    from opensdv.cli.energy import CellChemistry
    from opensdv.cli.twin import CYCLE_HELP
    from opensdv.model.components import Chemistry
    from opensdv.physics import SHIPPED_CYCLES
    from opensdv.vehicle.broker import DEFAULT_AUDIENCE as BROKER_AUDIENCE

    assert DEFAULT_AUDIENCE == BROKER_AUDIENCE
    assert [c.value for c in CellChemistry] == [c.value for c in Chemistry]
    assert f"a shipped cycle ({', '.join(SHIPPED_CYCLES)}) or a CSV file" == CYCLE_HELP
