"""The broker's exception tree; each maps to one gRPC status code in the adapters.

BrokerError
├── NotFound          unknown path or id
├── InvalidArgument   bad value, wrong entry type, path too long, bad request
├── PermissionDenied  the token's scope does not cover the path and action
├── Unauthenticated   no token, bad token, expired token
├── Unavailable       no provider for the actuator
├── AlreadyExists     the actuator is claimed by another provider
└── ResourceExhausted a client (or all together) holds as many subscriptions as allowed
"""

from opensdv.errors import OpenSDVError


class BrokerError(OpenSDVError):
    """A request the broker refused; nothing was changed."""


class NotFound(BrokerError):
    pass


class InvalidArgument(BrokerError):
    pass


class PermissionDenied(BrokerError):
    pass


class Unauthenticated(BrokerError):
    pass


class Unavailable(BrokerError):
    pass


class AlreadyExists(BrokerError):
    pass


class ResourceExhausted(BrokerError):
    pass
