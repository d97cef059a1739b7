"""What a vehicle can detect while updating, one class per kind of failure.

Each error carries a short ``code`` (the Uptane threat or fault it points to) that goes into the
ECU version report, so the director learns not only that an update failed but why.
"""

from __future__ import annotations

from opensdv.errors import OpenSDVError

__all__ = [
    "DownloadError",
    "ExpiredMetadataError",
    "ImageMismatchError",
    "InstallError",
    "MetadataError",
    "RollbackError",
    "SignatureError",
    "UpdateError",
    "VersionMismatchError",
]


class UpdateError(OpenSDVError):
    code = "update"


class MetadataError(UpdateError):
    """Metadata is malformed or breaks a rule of the TUF/Uptane workflow."""

    code = "bad-metadata"


class SignatureError(MetadataError):
    """Not enough valid signatures by the keys the delegating role names (arbitrary metadata)."""

    code = "signature"


class ExpiredMetadataError(MetadataError):
    """Metadata is past its expiry by the trusted clock: a freeze attack, or a repository down."""

    code = "freeze"


class RollbackError(MetadataError):
    """A version or release counter went down: a rollback attack."""

    code = "rollback"


class VersionMismatchError(MetadataError):
    """Files that must belong together do not (snapshot vs timestamp, targets vs snapshot)."""

    code = "mix-and-match"


class ImageMismatchError(UpdateError):
    """An image differs from what the image repository signed (or the director and image
    repository disagree about it): arbitrary software."""

    code = "arbitrary-software"


class DownloadError(UpdateError):
    """A file could not be fetched: unreachable, dropped, too slow or too long."""

    code = "download"

    def __init__(self, message: str, code: str = "download") -> None:
        super().__init__(message)
        self.code = code


class InstallError(UpdateError):
    """Writing, booting or checking a new image failed; the ECU stays on (or returns to) its old slot."""

    code = "install"

    def __init__(self, message: str, code: str = "install") -> None:
        super().__init__(message)
        self.code = code
