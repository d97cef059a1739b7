"""The OTA back end's error root."""

from opensdv.errors import OpenSDVError

__all__ = ["OtaRepositoryError"]


class OtaRepositoryError(OpenSDVError):
    """A repository operation was refused (the message names the repository, role and reason)."""
