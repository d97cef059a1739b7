"""Regenerate the ``sdv.databroker.v1`` stubs from the vendored protos (needs grpcio-tools, a dev
dependency): ``python scripts/generate_sdv_v1_stubs.py``.

The protos are Eclipse KUKSA's (Apache-2.0, ``sdv_v1/proto/LICENSE``), as removed from the databroker
in 0.7. protoc writes absolute imports (``from sdv.databroker.v1 import types_pb2``); they are
rewritten to this package so that OpenSDV claims no top-level ``sdv`` package (Velocitas has one).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "opensdv" / "vehicle" / "broker" / "grpc" / "sdv_v1"
IMPORT = re.compile(r"^from sdv\.databroker\.v1 import", re.MULTILINE)


def main() -> None:
    protos = sorted((PACKAGE / "proto" / "sdv" / "databroker" / "v1").glob("*.proto"))
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"-I{PACKAGE / 'proto'}", f"--python_out={scratch}",
             f"--pyi_out={scratch}", f"--grpc_python_out={scratch}", *map(str, protos)],
            check=True,
        )  # fmt: skip
        for generated in sorted((Path(scratch) / "sdv" / "databroker" / "v1").iterdir()):
            text = IMPORT.sub("from opensdv.vehicle.broker.grpc.sdv_v1 import", generated.read_text())
            (PACKAGE / generated.name).write_text(text)
            print(f"wrote {PACKAGE / generated.name}")


if __name__ == "__main__":
    main()
