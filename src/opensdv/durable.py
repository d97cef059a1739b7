"""Files that survive a crash in the middle of being written, and Ed25519 key files.

Shared by the cloud (repository metadata, signing keys) and the vehicle (slot state, trusted
metadata, ECU keys): both halves need the same guarantees, neither may import the other.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner

from opensdv.errors import OpenSDVError

__all__ = ["KeyFileError", "ed25519_signer", "write_atomically"]


class KeyFileError(OpenSDVError):
    """A key file is missing, unreadable or not an Ed25519 private key."""


def write_atomically(path: Path, data: bytes, sync: bool = True, private: bool = False) -> None:
    """Readers see the old contents or the new, never half. With ``sync`` the new contents are on
    disk before the rename, so a power cut cannot leave the old ones behind either. ``private``:
    readable by the owner only (mode 0600) from the moment the file exists, never after a chmod."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover keeps its old mode: start afresh
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
        if sync:
            out.flush()
            os.fsync(out.fileno())
    os.replace(tmp, path)


def ed25519_signer(file: Path, create: bool = True) -> CryptoSigner:
    """The Ed25519 key in ``file`` (unencrypted PKCS#8 PEM), created with mode 0600 if missing."""
    if not file.exists():
        if not create:
            raise KeyFileError(f"{file}: no such key")
        file.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
    try:
        private = serialization.load_pem_private_key(file.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise KeyFileError(f"{file}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{file}: expected an Ed25519 key, found {type(private).__name__}")
    return CryptoSigner(private)
