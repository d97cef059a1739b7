"""Brand adapters: OEM CAN definitions (DBC) mapped to VSS, in both directions.

``load_dbc`` reads opendbc's real definitions and OpenSDV's standard-component contract;
``load_mapping`` reads a vehicle model's mapping file; ``Adapter`` compiles them against a VSS
catalog; ``Feeder`` moves frames from a bus into a broker and actuation requests back onto the bus.
"""

from opensdv.vehicle.can._adapter import Adapter, Decoded
from opensdv.vehicle.can._dbc import FIXES, DbcFix, apply_fixes, load_dbc, opendbc_names
from opensdv.vehicle.can._errors import BusSpecError, CanDatabaseError, CanMappingError, SinkError
from opensdv.vehicle.can._feeder import Feeder, FeederStats
from opensdv.vehicle.can._mapping import (
    ActuatorMap,
    MappingFile,
    ResolvedMapping,
    SignalMap,
    load_mapping,
    shipped_mappings,
)
from opensdv.vehicle.can._simulator import EcuSimulator
from opensdv.vehicle.can._sinks import BrokerSink, GrpcSink, Sink
from opensdv.vehicle.can._sources import bus_frames, log_frames, open_bus

__all__ = [
    "FIXES",
    "ActuatorMap",
    "Adapter",
    "BrokerSink",
    "BusSpecError",
    "CanDatabaseError",
    "CanMappingError",
    "DbcFix",
    "Decoded",
    "EcuSimulator",
    "Feeder",
    "FeederStats",
    "GrpcSink",
    "MappingFile",
    "ResolvedMapping",
    "SignalMap",
    "Sink",
    "SinkError",
    "apply_fixes",
    "bus_frames",
    "load_dbc",
    "load_mapping",
    "log_frames",
    "open_bus",
    "opendbc_names",
    "shipped_mappings",
]
