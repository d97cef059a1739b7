"""The vehicle data broker: VSS signals over the Eclipse KUKSA ``kuksa.val`` v2 and v1 APIs.

The core (``Broker``) is a plain asyncio object; ``BrokerServer`` serves it over gRPC so that the
field's clients (``kuksa-client``, KUKSA providers) work against it unchanged.
"""

from opensdv.vehicle.broker._auth import DEFAULT_AUDIENCE, TokenVerifier, generate_key_pair, mint_token
from opensdv.vehicle.broker._core import (
    DEFAULT_BUFFER_SIZE,
    MAX_BUFFER_SIZE,
    ActuationCheck,
    Broker,
    BrokerStatistics,
    Provider,
)
from opensdv.vehicle.broker._errors import (
    AlreadyExists,
    BrokerError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from opensdv.vehicle.broker._permissions import ALLOW_ALL, Action, Permissions, vehicle_source
from opensdv.vehicle.broker._pki import DevPki, write_dev_pki
from opensdv.vehicle.broker._settings import server_from_settings, viss_from_settings
from opensdv.vehicle.broker._state import StateFile, StateFileError
from opensdv.vehicle.broker._subscription import Datapoint, Subscription
from opensdv.vehicle.broker.grpc._errors import AllowAll, Authenticator, FixedPermissions
from opensdv.vehicle.broker.grpc._server import BrokerServer, TlsConfig
from opensdv.vehicle.broker.grpc._v2 import IGNORE_UNKNOWN_HEADER, UNKNOWN_PATHS_HEADER

__all__ = [
    "ALLOW_ALL",
    "DEFAULT_AUDIENCE",
    "DEFAULT_BUFFER_SIZE",
    "IGNORE_UNKNOWN_HEADER",
    "MAX_BUFFER_SIZE",
    "UNKNOWN_PATHS_HEADER",
    "Action",
    "ActuationCheck",
    "AllowAll",
    "AlreadyExists",
    "Authenticator",
    "Broker",
    "BrokerError",
    "BrokerServer",
    "BrokerStatistics",
    "Datapoint",
    "DevPki",
    "FixedPermissions",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "Permissions",
    "Provider",
    "ResourceExhausted",
    "StateFile",
    "StateFileError",
    "Subscription",
    "TlsConfig",
    "TokenVerifier",
    "Unauthenticated",
    "Unavailable",
    "generate_key_pair",
    "mint_token",
    "server_from_settings",
    "vehicle_source",
    "viss_from_settings",
    "write_dev_pki",
]
