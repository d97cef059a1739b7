"""The fleet certificate authority: an identity for every car and every cloud service.

``opensdv fleet ca init`` makes the CA (ECDSA P-256) in a directory only the fleet's operators
reach; ``provision`` issues a car's certificate with its VIN as the subject and writes, into the
car's state directory, its private key, its certificate, the CA certificate and the current command
signer's certificate; ``provision_service`` does the same for a cloud service (``opensdv-<role>``),
with host names for the listeners it serves. The command key (Ed25519) is a certificate of the CA as
well, with its own extended key usage, so a car trusts a rotated key without being re-provisioned.

Revocation writes two public files: ``crl.pem`` (what TLS stacks, Mosquitto's ``crlfile`` among
them, check at the handshake) and ``revoked.json`` (the subjects, for the cloud and the embedded
broker, which also drop a revoked party that is already connected).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.fleet.operators import AuthError
from opensdv.durable import write_atomically
from opensdv.link.identity import SERVICE_PREFIX, SERVICE_RULES, IdentityFiles, is_vehicle
from opensdv.link.signing import COMMAND_SIGNING, SIGNER_SUBJECT

__all__ = [
    "SERVICE_ROLES",
    "FleetCa",
    "IdentityError",
    "Issued",
    "RevokedSubjects",
    "load_revoked",
    "write_private_key",
]

SERVICE_ROLES = (*SERVICE_RULES, "broker")  # the broker: a server certificate, no rights on the link
Usage = Literal["client", "server", "both", "command-signing"]
_DAYS = {"vehicle": 3650, "station": 1095, "service": 397, "command-signing": 90, "ca": 7300}
CRL_DAYS = 90  # a CRL past its next update makes every handshake fail: `opensdv fleet crl` renews it


class IdentityError(AuthError):
    """The CA directory, a subject or a role is not what the operation needs (the message says which)."""


@dataclass(frozen=True)
class Issued:
    serial: int
    subject: str
    usage: str
    not_after: str
    revoked_at: str | None = None


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> None:
    """A private key as unencrypted PKCS#8 PEM, readable by its owner only (mode 0600)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomically(path, pem, private=True)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_revoked(path: Path) -> frozenset[str]:
    """The revoked subjects in a ``revoked.json`` (none if the file does not exist yet)."""
    if not path.exists():
        return frozenset()
    try:
        subjects = json.loads(path.read_text())["subjects"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IdentityError(f"{path}: not a revocation list ({exc})") from None
    return frozenset(str(s) for s in subjects)


class RevokedSubjects:
    """``revoked.json`` as the cloud and the embedded broker follow it: re-read when it changes,
    looked at no more than once every ``recheck_s`` (a check per message costs a dictionary lookup)."""

    def __init__(self, path: Path | None, *, clock: Clock = SYSTEM_CLOCK, recheck_s: float = 1.0) -> None:
        self.path = path
        self.clock = clock
        self.recheck_s = recheck_s
        self._subjects: frozenset[str] = frozenset()
        self._stamp: float | None = None
        self._checked_at = float("-inf")
        self.changed()

    def changed(self) -> bool:
        """Re-read the file if it changed since the last look; whether it did."""
        self._checked_at = self.clock.monotonic()
        if self.path is None:
            return False
        try:
            stamp: float | None = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return False
        self._subjects = load_revoked(self.path)
        self._stamp = stamp
        return True

    def current(self) -> frozenset[str]:
        if self.clock.monotonic() - self._checked_at >= self.recheck_s:
            self.changed()
        return self._subjects


class FleetCa:
    """A CA directory: ``ca.key`` (mode 0600), ``ca.pem``, ``issued.jsonl``, ``crl.pem``, ``revoked.json``."""

    def __init__(self, directory: Path, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.directory = directory
        self.clock = clock
        if not (self.key_file.exists() and self.cert_file.exists()):
            raise IdentityError(f"{directory} holds no fleet CA: create one with `opensdv fleet ca init`")
        key = serialization.load_pem_private_key(self.key_file.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise IdentityError(f"{self.key_file}: not an ECDSA key")
        self._key = key
        self.certificate = x509.load_pem_x509_certificate(self.cert_file.read_bytes())

    @classmethod
    def init(cls, directory: Path, name: str = "OpenSDV fleet CA", *, clock: Clock = SYSTEM_CLOCK) -> FleetCa:
        """Create a CA in ``directory`` (an existing one is never overwritten)."""
        if (directory / "ca.key").exists():
            raise IdentityError(f"{directory} already holds a fleet CA; it is kept")
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.fromtimestamp(clock.time(), dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_DAYS["ca"]))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        write_private_key(directory / "ca.key", key)
        write_atomically(directory / "ca.pem", _pem(cert))
        ca = cls(directory, clock=clock)
        ca._write_revocations()
        return ca

    # ------------------------------------------------------------------------------ files

    @property
    def key_file(self) -> Path:
        return self.directory / "ca.key"

    @property
    def cert_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def crl_file(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def revoked_file(self) -> Path:
        return self.directory / "revoked.json"

    @property
    def index_file(self) -> Path:
        """One JSON line per certificate issued: appended to, so a fleet of 100,000 cars costs
        one line each, not a rewrite of the whole index."""
        return self.directory / "issued.jsonl"

    def issued(self) -> list[Issued]:
        if not self.index_file.exists():
            return []
        return [Issued(**json.loads(line)) for line in self.index_file.read_text().splitlines() if line]

    def _append(self, entry: Issued) -> None:
        with self.index_file.open("a") as index:
            index.write(json.dumps(asdict(entry)) + "\n")
            index.flush()
            os.fsync(index.fileno())

    def _record(self, entries: list[Issued]) -> None:
        write_atomically(self.index_file, "".join(json.dumps(asdict(e)) + "\n" for e in entries).encode())

    # ------------------------------------------------------------------------------ issuing

    def issue(
        self,
        subject: str,
        public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey,
        usage: Usage,
        *,
        days: int,
        hosts: Iterable[str] = (),
    ) -> x509.Certificate:
        """A certificate for ``subject`` signed by the CA, recorded in the index."""
        now = dt.datetime.fromtimestamp(self.clock.time(), dt.UTC)
        usages = {
            "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
            "server": [ExtendedKeyUsageOID.SERVER_AUTH],
            "both": [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
            "command-signing": [COMMAND_SIGNING],
        }[usage]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        names = [_general_name(host) for host in hosts]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        self._append(Issued(cert.serial_number, subject, usage, cert.not_valid_after_utc.isoformat()))
        return cert

    def _write_identity(
        self, directory: Path, name: str, subject: str, usage: Usage, days: int, hosts: Iterable[str] = ()
    ) -> IdentityFiles:
        files = IdentityFiles.under(directory, name)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue(subject, key.public_key(), usage, days=days, hosts=hosts)
        directory.mkdir(parents=True, exist_ok=True)
        write_private_key(files.key_file, key)
        write_atomically(files.cert_file, _pem(cert))
        shutil.copyfile(self.cert_file, files.ca_file)
        return files

    def provision(self, vin: str, link_dir: Path) -> IdentityFiles:
        """A car's identity in ``link_dir`` (its state directory's ``link``), with the current
        command signer's certificate beside it."""
        if not is_vehicle(vin):
            raise IdentityError(f"VIN {vin!r}: 17 characters of A-H, J-N, P, R-Z and 0-9")
        files = self._write_identity(link_dir, "vehicle", vin, "client", _DAYS["vehicle"])
        signer = self.directory / "command-signer.pem"
        if signer.exists():
            shutil.copyfile(signer, link_dir / "command-signer.pem")
        return files

    def provision_station(self, station_id: str, directory: Path) -> IdentityFiles:
        """A charging station's client certificate for OCPP security profile 3 (its id as the
        common name), as ``<directory>/<station id>.pem`` / ``.key``. An id that could be a car's
        or a service's identity is refused, so a station's certificate never opens the link."""
        if is_vehicle(station_id) or station_id.startswith(SERVICE_PREFIX):
            raise IdentityError(f"station id {station_id!r} looks like a car's or a service's identity on the link")
        return self._write_identity(directory, station_id, station_id, "client", _DAYS["station"])

    def provision_service(self, role: str, directory: Path, hosts: Iterable[str] = ()) -> IdentityFiles:
        """A service's identity (``opensdv-<role>``) in ``directory``, with the revocation files."""
        if role not in SERVICE_ROLES:
            raise IdentityError(f"service role {role!r}: one of {', '.join(SERVICE_ROLES)}")
        subject = SERVICE_PREFIX + role
        files = self._write_identity(directory, subject, subject, "both", _DAYS["service"], hosts)
        self.publish(directory)
        return files

    def command_key(self, directory: Path) -> Path:
        """A new command-signing key (``command-signer.key`` / ``.pem`` in ``directory``): the
        first one, or the next in a rotation. Cars accept it because the CA issued it."""
        key = ed25519.Ed25519PrivateKey.generate()
        cert = self.issue(SIGNER_SUBJECT, key.public_key(), "command-signing", days=_DAYS["command-signing"])
        directory.mkdir(parents=True, exist_ok=True)
        write_private_key(directory / "command-signer.key", key)
        write_atomically(directory / "command-signer.pem", _pem(cert))
        write_atomically(self.directory / "command-signer.pem", _pem(cert))  # what the next car is given
        return directory / "command-signer.pem"

    # ------------------------------------------------------------------------------ revoking

    def revoke(self, subject: str) -> list[int]:
        """Revoke every certificate of ``subject`` (a VIN or ``opensdv-<role>``); the serials revoked."""
        entries = self.issued()
        now = dt.datetime.fromtimestamp(self.clock.time(), dt.UTC).isoformat()
        hit = [e for e in entries if e.subject == subject and e.revoked_at is None]
        if not hit and not any(e.subject == subject for e in entries):
            raise IdentityError(f"{subject!r}: the CA never issued a certificate for it")
        self._record([Issued(**{**asdict(e), "revoked_at": now}) if e in hit else e for e in entries])
        self._write_revocations()
        return [e.serial for e in hit]

    def _write_revocations(self) -> None:
        """``crl.pem`` and ``revoked.json`` from the index (a fresh CRL: run it to renew)."""
        now = dt.datetime.fromtimestamp(self.clock.time(), dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=CRL_DAYS))
        )
        revoked = [e for e in self.issued() if e.revoked_at is not None]
        for entry in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(entry.serial)
                .revocation_date(dt.datetime.fromisoformat(entry.revoked_at or ""))
                .build()
            )
        crl = builder.sign(self._key, hashes.SHA256())
        write_atomically(self.crl_file, crl.public_bytes(serialization.Encoding.PEM))
        still_trusted = {e.subject for e in self.issued() if e.revoked_at is None}
        subjects = sorted({e.subject for e in revoked} - still_trusted)
        write_atomically(self.revoked_file, json.dumps({"subjects": subjects}, indent=1).encode())

    def renew_crl(self) -> None:
        self._write_revocations()

    def publish(self, directory: Path) -> None:
        """Copy the public revocation files (and the CA certificate) to where a broker or the cloud reads them."""
        directory.mkdir(parents=True, exist_ok=True)
        for source in (self.cert_file, self.crl_file, self.revoked_file):
            shutil.copyfile(source, directory / source.name)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
