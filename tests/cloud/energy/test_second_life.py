"""Module grading for second life and battery passports that validate against their schema."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opensdv.cli import app
from opensdv.cloud.energy.battery.grading import RECYCLE, SECOND_LIFE, STAY, grade_module, module_health
from opensdv.cloud.energy.battery.passport import PassportError, build_passport, validate_passport
from opensdv.config import GradingSettings
from opensdv.model import load_catalog
from opensdv.physics import AgeingProfile, age

RULES = GradingSettings()
VIN = "JN1NSSANL0D000001"


@pytest.mark.parametrize(
    ("soh", "resistance", "grade", "reason"),
    [
        (0.92, 1.10, STAY, "SoH 92.0 % >= 80 %"),
        (0.75, 1.30, SECOND_LIFE, "SoH 75.0 % < 80 % for traction"),
        (0.85, 1.70, SECOND_LIFE, "resistance x1.70 > x1.5"),
        (0.55, 1.60, RECYCLE, "below second-life limits"),
        (0.70, 2.40, RECYCLE, "resistance x2.40"),
    ],
)
def test_grades_and_reasons(soh: float, resistance: float, grade: str, reason: str) -> None:
    result = grade_module(3, soh, resistance, RULES)
    assert result.grade == grade and reason in result.reason


def test_thresholds_come_from_the_settings() -> None:
    strict = GradingSettings(stay_min_soh=0.95)
    assert grade_module(0, 0.92, 1.1, strict).grade == SECOND_LIFE


def _passport(years: float = 8.0) -> dict:
    leaf = load_catalog().vehicle("nissan-leaf-40")
    ageing = age(leaf, years, AgeingProfile(), 170.0)
    modules = [
        {"position": i, "module_id": leaf.pack.module.id, "serial": f"PK-{i}", "soh_percent": round(soh * 100, 2),
         "resistance_factor": round(factor, 3), "grade": g.grade, "reason": g.reason}
        for i, (soh, factor) in enumerate(module_health(leaf, ageing))
        for g in [grade_module(i, soh, factor, RULES)]
    ]  # fmt: skip
    return build_passport(
        leaf,
        vin=VIN,
        pack_serial="PK-0001",
        ageing=ageing,
        modules=modules,
        now=datetime(2027, 2, 18, tzinfo=UTC),
    )


def test_passport_has_the_regulations_attributes() -> None:
    document = _passport()
    assert document["identity"]["category"] == "electric vehicle battery"
    assert (
        document["materials"]["chemistry"] == "NMC"
        and "cobalt" in document["materials"]["critical_raw_materials"]
    )
    health = document["state_of_health"]
    assert health["soh_percent"] + health["capacity_fade_percent"] == pytest.approx(100)
    assert document["history"]["full_cycles"] > 0 and document["status"] == "original"
    assert len(document["modules"]) == 12
    json.dumps(document)  # exportable as JSON


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.update(status="broken"), "status: 'broken' is not one of"),
        (
            lambda d: d["state_of_health"].update(soh_percent=130),
            "state_of_health/soh_percent: 130 is greater than the maximum of 100",
        ),
        (lambda d: d["identity"].pop("manufacturer"), "identity: 'manufacturer' is a required property"),
        (
            lambda d: d["identity"].update(manufacturing_date="yesterday"),
            "identity/manufacturing_date: 'yesterday' is not a 'date'",
        ),
        (lambda d: d.update(colour="red"), "Additional properties are not allowed ('colour' was unexpected)"),
        (lambda d: d["modules"][0].update(grade="landfill"), "modules/0/grade: 'landfill' is not one of"),
    ],
)
def test_invalid_passports_are_refused_with_the_path(change, problem: str) -> None:  # type: ignore[no-untyped-def]
    document = copy.deepcopy(_passport())
    change(document)
    with pytest.raises(PassportError) as caught:
        validate_passport(document)
    assert problem in str(caught.value), str(caught.value)


def test_grade_and_passport_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    graded = runner.invoke(
        app,
        ["energy", "grade", "honda-e-advance", "--years", "12", "--ambient", "30"],
        env={"COLUMNS": "250"},
    )
    assert graded.exit_code == 0, graded.output
    assert "second life" in graded.output or "recycle" in graded.output
    written = runner.invoke(
        app,
        [
            "energy",
            "passport",
            "honda-e-advance",
            "--vin",
            "JHMHNDAE0ED000002",
            "--serial",
            "PK-2",
            "--out",
            "p.json",
        ],
    )
    assert written.exit_code == 0, written.output
    validate_passport(json.loads((tmp_path / "p.json").read_text()))
    bad = runner.invoke(
        app, ["energy", "passport", "honda-e-advance", "--vin", "TOO-SHORT", "--serial", "PK-2"]
    )
    assert bad.exit_code != 0


def test_passport_check_accepts_a_good_file_and_names_the_problem_in_a_bad_one(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_passport()))
    accepted = runner.invoke(app, ["energy", "passport-check", str(good)])
    assert accepted.exit_code == 0 and "validates" in accepted.output

    broken = _passport()
    broken["state_of_health"]["soh_percent"] = 140
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    refused = runner.invoke(app, ["energy", "passport-check", str(bad)])
    assert isinstance(refused.exception, PassportError)
    assert "bad.json" in str(refused.exception) and "soh_percent" in str(refused.exception)

    (tmp_path / "list.json").write_text("[1, 2]")
    not_object = runner.invoke(app, ["energy", "passport-check", str(tmp_path / "list.json")])
    assert "JSON object" in str(not_object.exception)
