"""One app in its own process: ``python -m opensdv.vehicle.apps.host APP_DIR BROKER``.

The runtime starts this with the app's token on standard input (one line) in a clean environment;
the host makes itself not dumpable, applies the manifest's resource limits, imports the manifest's
entry class from the app directory, runs it, and stops it cleanly on SIGTERM. An app is ordinary
Python: whatever it imports must be installed.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import resource
import signal
import sys
from pathlib import Path

from opensdv.vehicle.apps.app import VehicleApp
from opensdv.vehicle.apps.client import VehicleClient
from opensdv.vehicle.apps.errors import AppError
from opensdv.vehicle.apps.isolation import forbid_inspection
from opensdv.vehicle.apps.manifest import AppManifest, load_manifest

__all__ = ["apply_limits", "load_app_class", "main"]


def load_app_class(directory: Path, manifest: AppManifest) -> type[VehicleApp]:
    """The app class the manifest names, imported from the app's directory."""
    module_name, _, class_name = manifest.entry.partition(":")
    sys.path.insert(0, str(directory))
    try:
        module = importlib.import_module(module_name)
    finally:
        sys.path.remove(str(directory))
    app_class = getattr(module, class_name, None)
    if not (isinstance(app_class, type) and issubclass(app_class, VehicleApp)):
        raise AppError(f"{directory / 'app.toml'}: entry {manifest.entry} is not a VehicleApp subclass")
    return app_class


def apply_limits(manifest: AppManifest) -> None:
    """The manifest's limits on this process, before any app code runs (the kernel enforces them)."""
    memory = manifest.limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    if manifest.limits.cpu_seconds is not None:
        resource.setrlimit(resource.RLIMIT_CPU, (manifest.limits.cpu_seconds, manifest.limits.cpu_seconds))


async def _run(directory: Path, target: str) -> None:
    forbid_inspection()
    token = sys.stdin.readline().strip() or None  # the runtime's token, then stdin is done with
    manifest = load_manifest(directory)
    apply_limits(manifest)
    client = VehicleClient(target, token)
    app = load_app_class(directory, manifest)(client, manifest.settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, app.stop)
    logging.getLogger("opensdv.apps").info("%s %s started", manifest.name, manifest.version)
    await app.run()


def main(argv: list[str] | None = None) -> None:
    """The app host process: load one app from its directory and run it until stopped."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.exit("usage: python -m opensdv.vehicle.apps.host APP_DIR BROKER_HOST:PORT")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(_run(Path(args[0]), args[1]))
    except AppError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
