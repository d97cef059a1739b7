"""What an app can be told by the broker, as exceptions that say which signal and why."""

from __future__ import annotations

from opensdv.errors import OpenSDVError

__all__ = ["AppError", "BrokerUnreachable", "SignalDenied", "SignalNotFound", "SignalUnavailable"]


class AppError(OpenSDVError):
    """A request of the app was refused (the message carries the broker's reason)."""


class SignalNotFound(AppError):
    """The broker's catalog has no such signal."""


class SignalDenied(AppError):
    """The app's token does not allow it, or the safety guard refused the actuation."""


class SignalUnavailable(AppError):
    """No provider serves this actuator right now."""


class BrokerUnreachable(AppError):
    """The broker did not answer within the app's patience."""
