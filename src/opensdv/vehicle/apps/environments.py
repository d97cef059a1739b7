"""Python environments of their own for apps that bring their own dependencies (Velocitas apps pin
``grpcio``/``protobuf`` versions the platform does not run).

One virtual environment per distinct set of pinned requirements, built once and cached: apps with
the same requirements share it, a restart reuses it, and several cars' runtimes (or processes)
pointed at one directory build it once (a lock file per environment). Wheels only (``--only-binary=:all:``), so no
package runs a build script on the car; ``PIP_FIND_LINKS`` / ``PIP_INDEX_URL`` point pip at a
local wheel directory or mirror for cars without a route to an index.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from opensdv.vehicle.apps.errors import AppError

__all__ = ["AppEnvironments"]

READY = "opensdv-environment.json"  # written last: a directory without it is a build that did not finish


class AppEnvironments:
    """``await environments.python(["velocitas-sdk==0.15.7"])`` -> that environment's interpreter."""

    def __init__(self, root: Path, base_python: str = sys.executable) -> None:
        self.root = root
        self.base_python = base_python
        self._locks: dict[str, asyncio.Lock] = {}

    def key(self, requirements: list[str]) -> str:
        """The cache key: the requirements (order aside) and the interpreter they are built for."""
        identity = json.dumps([sorted(requirements), sys.version, self.base_python])
        return hashlib.sha256(identity.encode()).hexdigest()[:16]

    def ready(self, requirements: list[str]) -> bool:
        """Whether the environment for ``requirements`` is built (cached)."""
        return (self.root / self.key(requirements) / READY).is_file()

    async def python(self, requirements: list[str]) -> Path:
        """The environment's interpreter, building the environment first if it is not cached."""
        key = self.key(requirements)
        target = self.root / key
        interpreter = target / "bin" / "python"
        async with self._locks.setdefault(key, asyncio.Lock()):
            if (target / READY).is_file():
                return interpreter
            self.root.mkdir(parents=True, exist_ok=True)
            with (self.root / f"{key}.lock").open("a") as lock:
                await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)  # another builder: wait for it
                try:
                    if not (target / READY).is_file():
                        await self._build(requirements, target)
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        return interpreter

    async def _build(self, requirements: list[str], target: Path) -> None:
        scratch = target.with_name(target.name + ".building")
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        await self._run([self.base_python, "-m", "venv", str(scratch)], "creating the environment")
        await self._run(
            [str(scratch / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
             "--only-binary=:all:", *requirements],
            f"installing {', '.join(requirements)}",
        )  # fmt: skip
        (scratch / READY).write_text(json.dumps({"requirements": requirements, "python": sys.version}))
        scratch.rename(target)  # only bin/python is run, which finds its prefix from pyvenv.cfg wherever it is

    @staticmethod
    async def _run(command: list[str], what: str) -> None:
        environment = {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "PATH", "HOME", "LANG"))}
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=environment
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            tail = "\n".join(output.decode(errors="replace").strip().splitlines()[-5:])
            raise AppError(f"{what} failed (exit {process.returncode}):\n{tail}")
