"""The public surface: what each package exports exists and is documented, and every package's
exceptions grow from one root under ``OpenSDVError`` (so a caller catches a part's errors with one
class, and the CLI prints any of them as one line)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import opensdv
from opensdv.errors import OpenSDVError

ROOTS = {  # package -> its error root
    "opensdv.model": "opensdv.model._files.ModelError",
    "opensdv.link": "opensdv.link.fleet.LinkError",
    "opensdv.storage": "opensdv.storage.database.StorageError",
    "opensdv.vehicle.broker": "opensdv.vehicle.broker._errors.BrokerError",
    "opensdv.vehicle.can": "opensdv.vehicle.can._errors.CanError",
    "opensdv.vehicle.ota": "opensdv.vehicle.ota.errors.UpdateError",
    "opensdv.vehicle.apps": "opensdv.vehicle.apps.errors.AppError",
    "opensdv.vehicle.twin": "opensdv.physics.cycles.CycleError",
    "opensdv.cloud.energy": "opensdv.cloud.energy.errors.EnergyError",
    "opensdv.cloud.ota": "opensdv.cloud.ota.errors.OtaRepositoryError",
    "opensdv.cloud.fleet": "opensdv.cloud.fleet.errors.FleetError",
    "opensdv.cloud.telemetry": "opensdv.cloud.telemetry.store.TelemetryStoreError",
}
NOT_ERRORS = {"opensdv.vehicle.ota.slots.PowerLossError"}  # a test's crash hook: must not be caught as one


def _modules(package: str) -> list[ModuleType]:
    root = importlib.import_module(package)
    found = [root]
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if ".examples" not in info.name and not info.name.endswith("__main__"):
            found.append(importlib.import_module(info.name))
    return found


def _resolve(dotted: str) -> type:
    module, name = dotted.rsplit(".", 1)
    found = getattr(importlib.import_module(module), name)
    assert isinstance(found, type)
    return found


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_exception_of_a_package_grows_from_its_root(package: str) -> None:
    root = _resolve(ROOTS[package])
    assert issubclass(root, OpenSDVError)
    strays = [
        f"{cls.__module__}.{cls.__name__}"
        for module in _modules(package)
        for cls in vars(module).values()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and not issubclass(cls, Warning)
        and cls.__module__ == module.__name__
        and f"{cls.__module__}.{cls.__name__}" not in NOT_ERRORS
        and not issubclass(cls, root)
    ]
    assert strays == [], f"outside {root.__name__}: {strays}"


def test_every_exported_name_exists_and_says_what_it_is_for() -> None:
    missing, undocumented = [], []
    for module in _modules("opensdv"):
        for name in getattr(module, "__all__", ()):
            if not hasattr(module, name):
                missing.append(f"{module.__name__}.{name}")
                continue
            value = getattr(module, name)
            if (inspect.isclass(value) or inspect.isfunction(value)) and not inspect.getdoc(value):
                undocumented.append(f"{module.__name__}.{name}")
    assert missing == []
    assert undocumented == [], f"exported without a docstring: {undocumented}"


def test_the_packages_say_what_they_export() -> None:
    """Each package with a public API names it in ``__all__`` (its docs list the same)."""
    for package in ("opensdv.model", "opensdv.vehicle.broker", "opensdv.vehicle.can", "opensdv.cloud.energy"):
        module = importlib.import_module(package)
        assert module.__doc__, package
        public = {n for n, v in vars(module).items() if not n.startswith("_") and not inspect.ismodule(v)}
        assert public - {"annotations"} <= set(module.__all__) | {"TYPE_CHECKING"}, package
    assert opensdv.__version__
