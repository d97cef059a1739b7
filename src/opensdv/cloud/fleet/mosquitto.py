"""``opensdv fleet mosquitto-config``: a Mosquitto 2 listener that enforces the fleet's identities.

One TLS listener requiring a client certificate from the fleet CA, checked against the CRL; the
certificate's common name becomes the username (``use_identity_as_username``), so the pattern ACL
(``%u`` is the VIN) gives each car its own topics only and each service its role's. The ACL is
generated from ``link.identity``'s rules, the same ones the embedded broker enforces. Mosquitto reads
the CRL at start and on SIGHUP: after ``opensdv fleet revoke``, reload it (``systemctl reload
mosquitto``; a connection already open stays until it drops) — the cloud and its ingest stop
trusting the identity at once either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from opensdv.durable import write_atomically
from opensdv.link.identity import SERVICE_PREFIX, SERVICE_RULES, VEHICLE_RULES, IdentityFiles

__all__ = ["MosquittoFiles", "mosquitto_acl", "write_mosquitto_config"]


@dataclass(frozen=True)
class MosquittoFiles:
    config: Path
    acl: Path


def mosquitto_acl() -> str:
    """Mosquitto's ``acl_file`` for the link's rules: a pattern per car topic, a section per service."""
    lines = [
        "# written by `opensdv fleet mosquitto-config`: the fleet link's access rules (link.identity)",
        "# cars: the certificate's common name (the username) is the VIN",
    ]
    lines += [f"pattern {rule.access} {rule.pattern('%u')}" for rule in VEHICLE_RULES]
    for role, rules in SERVICE_RULES.items():
        lines += ["", f"user {SERVICE_PREFIX}{role}"]
        lines += [f"topic {rule.access} {rule.pattern()}" for rule in rules] or ["# no rights on the link"]
    return "\n".join(lines) + "\n"


def write_mosquitto_config(
    directory: Path,
    identity: IdentityFiles,
    crl_file: Path,
    *,
    port: int = 8883,
    bind: str = "0.0.0.0",
    persistence_dir: Path | None = None,
    max_queued_messages: int = 100_000,
    run_as: str | None = None,
) -> MosquittoFiles:
    """``mosquitto.conf`` and ``fleet.acl`` in ``directory`` for the broker certificate ``identity``.
    Started as root, Mosquitto becomes ``run_as`` (default: the ``mosquitto`` user), who must be
    able to read the key, the certificates and the CRL."""
    files = MosquittoFiles(directory / "mosquitto.conf", directory / "fleet.acl")
    write_atomically(files.acl, mosquitto_acl().encode())
    persistence = (
        ["persistence true", f"persistence_location {persistence_dir}/"]
        if persistence_dir
        else ["persistence false"]
    )
    lines = [
        "# written by `opensdv fleet mosquitto-config`: mutual TLS only, identities from the fleet CA",
        "per_listener_settings false",
        "allow_anonymous false",
        *([f"user {run_as}"] if run_as else []),
        f"acl_file {files.acl}",
        *persistence,
        "# a car offline for a while keeps its commands; the ingest keeps what cars sent while it restarts",
        f"max_queued_messages {max_queued_messages}",
        "",
        f"listener {port} {bind}",
        f"cafile {identity.ca_file}",
        f"certfile {identity.cert_file}",
        f"keyfile {identity.key_file}",
        f"crlfile {crl_file}",
        "require_certificate true",
        "use_identity_as_username true",
        "",
    ]
    write_atomically(files.config, "\n".join(lines).encode())
    return files
