"""COVESA VISS v3 (Vehicle Information Service Specification 3.0) over the broker core: get, set,
subscribe and unsubscribe over WebSocket and HTTP, for web and mobile clients."""

from opensdv.vehicle.viss._protocol import VissError
from opensdv.vehicle.viss._service import VissService, VissSession
from opensdv.vehicle.viss._transport import SUBPROTOCOL, VissServer, viss_app

__all__ = ["SUBPROTOCOL", "VissError", "VissServer", "VissService", "VissSession", "viss_app"]
