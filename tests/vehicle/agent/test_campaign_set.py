"""The cloud's campaigns in a car: only a set the fleet's command signer made for this car, newer
than the one held, is taken; each campaign's state (received, active, suspended, expired, rejected
with the reason) is reported; the set survives a restart; a replayed older set changes nothing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from opensdv.clock import FakeClock
from opensdv.cloud.fleet.identities import FleetCa
from opensdv.link.campaigns import CampaignEntry, CampaignStates
from opensdv.link.signing import CommandSigner, CommandVerifier
from opensdv.model.campaigns import Campaign, parse_campaign
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.agent.campaign_set import CarFacts, CloudCampaigns
from opensdv.vehicle.agent.campaigns import CampaignEngine

VIN, OTHER = "JN1NSSAN0DD000001", "JHMHNDAE0ED000002"
NOW = 1_796_000_000.0  # 2026-11-30
CATALOG = load_default_vss()
CAR = CarFacts(VIN, "Nissan", "Leaf", ("JP", "US"))


def campaign(id: str = "fast", version: int = 1, **changes: Any) -> Campaign:
    document = {
        "id": id, "version": version, "signals": [{"path": "Vehicle.Speed"}],
        "scheme": {"kind": "condition", "expression": "Vehicle.Speed > 80", "post_trigger_s": 1},
    } | changes  # fmt: skip
    return parse_campaign(document)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> FleetCa:
    ca = FleetCa.init(tmp_path_factory.mktemp("ca"), clock=FakeClock(NOW))
    ca.command_key(ca.directory / "signer")
    return ca


class Car:
    """One car's campaign holder with what it reported."""

    def __init__(self, ca: FleetCa, clock: FakeClock, store: Path, local_ids: tuple[str, ...] = ()) -> None:
        self.engine = CampaignEngine(CATALOG, lambda record: None)
        self.reports: list[CampaignStates] = []
        verifier = CommandVerifier(VIN, ca.cert_file, clock=clock)
        self.cloud = CloudCampaigns(
            self.engine, verifier, CAR, self.reports.append, store, local_ids=local_ids, clock=clock
        )

    @property
    def running(self) -> dict[str, int]:
        return {c.id: c.version for c in self.engine.campaigns}

    def states(self) -> dict[str, tuple[str, str]]:
        return {s.id: (s.state, s.reason) for s in self.reports[-1].campaigns}


def signer(ca: FleetCa, clock: FakeClock) -> CommandSigner:
    directory = ca.directory / "signer"
    return CommandSigner(directory / "command-signer.key", directory / "command-signer.pem", clock=clock)


def entries(*campaigns: Campaign, suspended: tuple[str, ...] = ()) -> list[CampaignEntry]:
    return [CampaignEntry(campaign=c, suspended=c.id in suspended) for c in campaigns]


def test_a_signed_set_runs_and_is_reported_kept_across_a_restart(ca: FleetCa, tmp_path: Path) -> None:
    clock = FakeClock(NOW + 60)
    car = Car(ca, clock, tmp_path / "campaigns.json")
    car.cloud.receive(signer(ca, clock).sign_campaigns(VIN, 1, entries(campaign(), campaign("slow"))))
    assert car.running == {"fast": 1, "slow": 1} and car.cloud.changed.is_set()
    assert car.states() == {"fast": ("active", ""), "slow": ("active", "")}
    assert car.reports[-1].revision == 1 and car.reports[-1].refused == ""
    restarted = Car(ca, clock, tmp_path / "campaigns.json")
    restarted.cloud.refresh(clock.time())
    assert restarted.running == {"fast": 1, "slow": 1} and restarted.cloud.revision == 1


def test_suspend_resume_new_version_and_delete(ca: FleetCa, tmp_path: Path) -> None:
    clock = FakeClock(NOW + 60)
    car, sign = Car(ca, clock, tmp_path / "c.json"), signer(ca, clock)
    car.cloud.receive(sign.sign_campaigns(VIN, 1, entries(campaign(), campaign("slow"))))
    car.cloud.receive(sign.sign_campaigns(VIN, 2, entries(campaign(), campaign("slow"), suspended=("fast",))))
    assert car.running == {"slow": 1} and car.states()["fast"] == ("suspended", "")
    car.cloud.receive(sign.sign_campaigns(VIN, 3, entries(campaign(version=2), campaign("slow"))))
    assert car.running == {"fast": 2, "slow": 1}
    car.cloud.receive(sign.sign_campaigns(VIN, 4, entries(campaign("slow"))))  # fast deleted
    assert car.running == {"slow": 1} and set(car.states()) == {"slow"}


def test_a_replayed_older_set_is_refused_and_the_same_one_again_changes_nothing(ca: FleetCa, tmp_path: Path) -> None:
    clock = FakeClock(NOW + 60)
    car, sign = Car(ca, clock, tmp_path / "c.json"), signer(ca, clock)
    old = sign.sign_campaigns(VIN, 1, entries(campaign()))
    car.cloud.receive(old)
    current = sign.sign_campaigns(VIN, 2, entries(campaign("slow")))
    car.cloud.receive(current)
    reports = len(car.reports)
    car.cloud.receive(current)  # the retained set on the next connection
    assert len(car.reports) == reports
    car.cloud.receive(old)  # someone who can publish replays the set that ran "fast"
    assert car.running == {"slow": 1} and car.cloud.refused == 1
    assert "older than the one held (2): a replay" in car.reports[-1].refused


def test_unsigned_tampered_foreign_and_other_cars_sets_are_refused(ca: FleetCa, tmp_path: Path) -> None:
    clock = FakeClock(NOW + 60)
    car, sign = Car(ca, clock, tmp_path / "c.json"), signer(ca, clock)
    envelope = json.loads(sign.sign_campaigns(VIN, 1, entries(campaign())))
    envelope["content"]["campaigns"][0]["campaign"]["signals"][0]["path"] = "Vehicle.CurrentLocation.Latitude"
    attacks = {
        b'{"content": {}}': "not a signed campaign set",
        json.dumps(envelope).encode(): "signature does not verify",
        sign.sign_campaigns(OTHER, 1, entries(campaign())): f"for vehicle {OTHER}, not this one",
    }
    tampered = json.loads(sign.sign_campaigns(VIN, 1, entries(campaign())))
    tampered["signature"] = base64.b64encode(b"\0" * 64).decode()
    attacks[json.dumps(tampered).encode()] = "signature does not verify"
    rogue = FleetCa.init(tmp_path / "rogue", clock=FakeClock(NOW))
    rogue.command_key(tmp_path / "rogue-key")
    forger = CommandSigner(tmp_path / "rogue-key" / "command-signer.key", tmp_path / "rogue-key" / "command-signer.pem", clock=clock)
    attacks[forger.sign_campaigns(VIN, 9, entries(campaign()))] = "not one the fleet CA issued"
    for payload, why in attacks.items():
        car.cloud.receive(payload)
        assert why in car.reports[-1].refused
    assert car.running == {} and car.cloud.revision == 0 and car.cloud.refused == len(attacks)
    assert not (tmp_path / "c.json").exists()


def test_not_a_target_not_valid_here_or_a_local_id_is_rejected_with_the_reason(ca: FleetCa, tmp_path: Path) -> None:
    clock = FakeClock(NOW + 60)
    car, sign = Car(ca, clock, tmp_path / "c.json", local_ids=("mine",)), signer(ca, clock)
    campaigns = entries(
        campaign("hondas", targets={"brands": ["Honda"]}),
        campaign("europe", targets={"markets": ["EU"]}),
        campaign("unknown", signals=[{"path": "Vehicle.NoSuchSignal"}]),
        campaign("mine"),
        campaign("ok", targets={"brands": ["Nissan"], "vins": [VIN]}),
    )
    car.cloud.receive(sign.sign_campaigns(VIN, 1, campaigns))
    states = car.states()
    assert states["hondas"] == ("rejected", "brand Nissan is not among the targets ['Honda']")
    assert states["europe"][0] == "rejected" and "markets ['JP', 'US']" in states["europe"][1]
    assert states["unknown"][0] == "rejected" and "unknown VSS path 'Vehicle.NoSuchSignal'" in states["unknown"][1]
    assert states["mine"] == ("rejected", "campaign mine is one of this car's own campaign files")
    assert states["ok"] == ("active", "") and car.running == {"ok": 1}


def test_start_and_expiry_pass_with_the_cars_clock(ca: FleetCa, tmp_path: Path) -> None:
    clock = FakeClock(NOW + 60)
    start, expiry = datetime.fromtimestamp(NOW + 3600, UTC), datetime.fromtimestamp(NOW + 7200, UTC)
    car = Car(ca, clock, tmp_path / "c.json")
    car.cloud.receive(signer(ca, clock).sign_campaigns(VIN, 1, entries(campaign(start=start, expiry=expiry))))
    assert car.states()["fast"] == ("received", f"starts at {start.isoformat()}") and car.running == {}
    car.cloud.refresh(NOW + 3600)
    assert car.states()["fast"] == ("active", "") and car.running == {"fast": 1}
    reports = len(car.reports)
    car.cloud.refresh(NOW + 3601)  # nothing changed: nothing reported
    assert len(car.reports) == reports
    car.cloud.refresh(NOW + 7200)
    assert car.states()["fast"][0] == "expired" and car.running == {}
