"""The shared vocabulary: VSS catalogs, standard components, vehicle definitions.

Pure data and validation; the only I/O is reading catalog files.
"""

from opensdv.model._files import CatalogError
from opensdv.model.components import (
    BatteryModule,
    CheckResult,
    EAxle,
    Pack,
    VoltageClass,
    check_compatibility,
)
from opensdv.model.vehicles import Catalog, Vehicle, VehicleDefinition, load_catalog
from opensdv.model.vss import DataType, EntryType, VssCatalog, VssLeaf, VssValueError, load_vss

__all__ = [
    "BatteryModule",
    "Catalog",
    "CatalogError",
    "CheckResult",
    "DataType",
    "EAxle",
    "EntryType",
    "Pack",
    "Vehicle",
    "VehicleDefinition",
    "VoltageClass",
    "VssCatalog",
    "VssLeaf",
    "VssValueError",
    "check_compatibility",
    "load_catalog",
    "load_vss",
]
