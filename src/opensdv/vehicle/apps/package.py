"""App packages and app sets: what travels over the air.

An app package is a reproducible ``.tar.gz`` of one app directory (``app.toml`` and its files,
sorted, with fixed timestamps and owners, so the same sources give the same bytes and hash). An
*app set* is one archive with every app a car should run: it is the image of the vehicle's ``APPS``
ECU in Uptane, so installing, updating, rolling back and removing apps are all one signed,
verified, A/B-installed image update — nothing new for the OTA path.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterable
from pathlib import Path

from opensdv.model._files import CatalogError
from opensdv.model.vehicles import Vehicle
from opensdv.vehicle.apps.errors import AppError
from opensdv.vehicle.apps.manifest import AppManifest, load_manifest

__all__ = ["app_set", "check_app_set", "unpack_app_set"]

_SKIP = {"__pycache__", ".pytest_cache", ".mypy_cache"}


def _files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and not (_SKIP & set(p.relative_to(directory).parts))
    )


def app_set(directories: Iterable[Path]) -> bytes:
    """One reproducible archive of the apps in ``directories`` (each checked first)."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        names: set[str] = set()
        for directory in sorted(directories, key=lambda d: load_manifest(d).name):
            manifest = load_manifest(directory)
            if manifest.name in names:
                raise AppError(f"app {manifest.name} is in the set twice")
            names.add(manifest.name)
            for file in _files(directory):
                info = tarfile.TarInfo(f"{manifest.name}/{file.relative_to(directory).as_posix()}")
                data = file.read_bytes()
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack_app_set(data: bytes, destination: Path) -> list[Path]:
    """Extract (refusing links, devices and paths outside ``destination``) and return the app dirs."""
    destination.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            archive.extractall(destination, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise AppError(f"not a valid app set: {exc}") from None
    return sorted(p.parent for p in destination.glob("*/app.toml"))


def check_app_set(data: bytes, scratch: Path, vehicle: Vehicle) -> list[AppManifest]:
    """The manifests of an app set this vehicle can run, or ``AppError`` saying why not
    (the health check of the ``APPS`` ECU: a bad set rolls back to the previous one)."""
    manifests = []
    for directory in unpack_app_set(data, scratch):
        try:
            manifest = load_manifest(directory)
        except CatalogError as exc:
            raise AppError(str(exc)) from None
        unmet = manifest.unmet(vehicle)
        if unmet:
            raise AppError(f"app {manifest.name} cannot run on {vehicle.id}: {'; '.join(unmet)}")
        manifests.append(manifest)
    return manifests
