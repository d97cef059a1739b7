"""The fleet CA: what it issues, what revocation writes, and its command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from opensdv.cli import app
from opensdv.cloud.fleet.identities import FleetCa, IdentityError, RevokedSubjects, load_revoked
from opensdv.link.signing import COMMAND_SIGNING

VIN = "JN1NSSAN0DD000001"


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_a_car_gets_its_vin_as_subject_a_client_certificate_and_a_private_key_only_it_reads(
    tmp_path: Path,
) -> None:
    ca = FleetCa.init(tmp_path / "ca")
    ca.command_key(tmp_path / "cmd")
    files = ca.provision(VIN, tmp_path / "car" / "link")
    cert = _cert(files.cert_file)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == VIN
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    cert.verify_directly_issued_by(_cert(ca.cert_file))
    assert files.key_file.stat().st_mode & 0o077 == 0 and ca.key_file.stat().st_mode & 0o077 == 0
    signer = _cert(tmp_path / "car" / "link" / "command-signer.pem")  # the cloud's key, given at provisioning
    assert COMMAND_SIGNING in signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value


def test_service_identities_carry_their_role_and_hosts(tmp_path: Path) -> None:
    ca = FleetCa.init(tmp_path / "ca")
    files = ca.provision_service("broker", tmp_path / "svc", hosts=("fleet.example.com", "10.0.0.7"))
    names = _cert(files.cert_file).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["fleet.example.com"]
    assert files.cert_file.name == "opensdv-broker.pem" and (tmp_path / "svc" / "revoked.json").exists()


def test_bad_requests_say_what_is_wrong_and_keep_what_exists(tmp_path: Path) -> None:
    ca = FleetCa.init(tmp_path / "ca")
    with pytest.raises(IdentityError, match="already holds a fleet CA"):
        FleetCa.init(tmp_path / "ca")
    with pytest.raises(IdentityError, match="VIN 'JN1NSSAN0DD00000I'"):
        ca.provision("JN1NSSAN0DD00000I", tmp_path / "x")  # I is not a VIN character
    with pytest.raises(IdentityError, match="service role 'root'"):
        ca.provision_service("root", tmp_path / "x")
    with pytest.raises(IdentityError, match="never issued"):
        ca.revoke("JHMHNDAE0ED000002")
    with pytest.raises(IdentityError, match="holds no fleet CA"):
        FleetCa(tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(IdentityError, match="bad.json: not a revocation list"):
        load_revoked(tmp_path / "bad.json")


def test_revocation_lists_the_serials_and_the_subject_until_it_is_provisioned_again(tmp_path: Path) -> None:
    ca = FleetCa.init(tmp_path / "ca")
    first = _cert(ca.provision(VIN, tmp_path / "car").cert_file)
    watcher = RevokedSubjects(ca.revoked_file, recheck_s=0)
    assert watcher.current() == frozenset()
    assert ca.revoke(VIN) == [first.serial_number]
    crl = x509.load_pem_x509_crl(ca.crl_file.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(first.serial_number) is not None
    assert watcher.current() == {VIN}
    second = _cert(ca.provision(VIN, tmp_path / "car").cert_file)  # a repaired car, a new key
    ca.renew_crl()
    assert watcher.current() == frozenset()
    crl = x509.load_pem_x509_crl(ca.crl_file.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(first.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(second.serial_number) is None


def test_the_fleet_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    ca = ["--ca-dir", str(tmp_path / "ca")]

    def run(*args: str) -> str:
        result = runner.invoke(app, ["fleet", *args, *ca])
        assert result.exit_code == 0, result.output
        return result.output

    run("ca", "init")
    run("provision", VIN, "--vehicle-dir", str(tmp_path / "car"))
    run("provision-service", "broker", "--host", "127.0.0.1", "--out", str(tmp_path / "broker"))
    assert "revoked" in run("list")
    assert VIN in {entry.subject for entry in FleetCa(tmp_path / "ca").issued()}
    run("revoke", VIN, "--publish", str(tmp_path / "broker"))
    assert json.loads((tmp_path / "broker" / "revoked.json").read_text())["subjects"] == [VIN]
    out = runner.invoke(
        app,
        [
            "fleet",
            "mosquitto-config",
            "--identity-dir",
            str(tmp_path / "broker"),
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert out.exit_code == 0, out.output
    conf = (tmp_path / "m" / "mosquitto.conf").read_text()
    assert "require_certificate true" in conf and "allow_anonymous false" in conf and "crlfile" in conf
    acl = (tmp_path / "m" / "fleet.acl").read_text()
    assert "pattern write opensdv/v1/vehicles/%u/telemetry" in acl and "user opensdv-api" in acl
    failed = runner.invoke(app, ["fleet", "ca", "init", *ca])
    assert failed.exit_code != 0 and "already holds a fleet CA" in str(failed.exception)
