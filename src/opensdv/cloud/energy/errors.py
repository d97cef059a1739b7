"""The energy services' error root: sessions, plans, the CSMS and passports all derive from it."""

from opensdv.errors import OpenSDVError

__all__ = ["EnergyError"]


class EnergyError(OpenSDVError):
    """Something the energy services refused; the message names the file, station or field."""
