"""The real-time twin runtime: one vehicle stepped in real time to drive its CAN bus or a broker.
The physics it steps (cycles, parameters, mechanics, ageing) is ``opensdv.physics``, shared with
the cloud."""

from opensdv.vehicle.twin.realtime import TwinRuntime, drive_bus

__all__ = ["TwinRuntime", "drive_bus"]
