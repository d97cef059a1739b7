"""Signing keys of the OTA roles, one PEM file each.

Uptane's security rests on where keys live: the image repository's root and targets keys are meant
to be offline (an HSM, a signing ceremony), the director's and the timestamp/snapshot keys online.
Here every key is an Ed25519 PKCS#8 file under one directory so the embedded platform runs without
hardware; a deployment points ``offline_keys`` at removable media and keeps only the online ones on
the server.
"""

from __future__ import annotations

from pathlib import Path

from securesystemslib.signer import CryptoSigner, SSlibKey

from opensdv.cloud.ota.errors import OtaRepositoryError
from opensdv.durable import KeyFileError, ed25519_signer

__all__ = ["KeyStore", "KeyStoreError"]


class KeyStoreError(OtaRepositoryError, KeyFileError):
    """A key name is unusable, or its file is missing or not an Ed25519 private key."""


class KeyStore:
    """Named Ed25519 keys in ``path``; ``signer(name)`` creates the key on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._loaded: dict[str, CryptoSigner] = {}
        self._names_by_keyid: dict[str, str] | None = None

    def _file(self, name: str) -> Path:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise KeyStoreError(f"key name {name!r} must be letters, digits, '-' and '_'")
        return self.path / f"{name}.pem"

    def signer(self, name: str, create: bool = True) -> CryptoSigner:
        if name in self._loaded:
            return self._loaded[name]
        signer = self._loaded[name] = ed25519_signer(self._file(name), create)
        if self._names_by_keyid is not None:
            self._names_by_keyid[signer.public_key.keyid] = name
        return signer

    def signer_for(self, keyid: str) -> CryptoSigner | None:
        """The signer holding the private half of ``keyid``, if this store has it."""
        if self._names_by_keyid is None:
            self._names_by_keyid = {}
            for file in sorted(self.path.glob("*.pem")) if self.path.exists() else []:
                self._names_by_keyid[self.signer(file.stem, create=False).public_key.keyid] = file.stem
        name = self._names_by_keyid.get(keyid)
        return None if name is None else self.signer(name, create=False)

    def public_key(self, name: str) -> SSlibKey:
        return self.signer(name, create=False).public_key
