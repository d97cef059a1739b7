"""Settings precedence: defaults < opensdv.toml < OPENSDV_* environment < CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensdv.config import ConfigError, load_settings


def test_defaults_need_no_file(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.broker.host == "127.0.0.1" and settings.broker.port == 55555
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'data' / 'opensdv.db'}"


def test_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path("opensdv.toml").write_text(
        'database_url = "sqlite:///from-file.db"\n[broker]\nport = 50001\nhost = "0.0.0.0"\n'
    )
    assert load_settings().broker.port == 50001
    monkeypatch.setenv("OPENSDV_BROKER__PORT", "50002")
    settings = load_settings()
    assert (settings.broker.port, settings.broker.host) == (50002, "0.0.0.0")
    assert load_settings(database_url="sqlite:///flag.db").database_url == "sqlite:///flag.db"
    assert load_settings(database_url=None).database_url == "sqlite:///from-file.db"


def test_config_file_by_flag_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site.toml"
    site.write_text("[broker]\nport = 50010\n")
    assert load_settings(site).broker.port == 50010
    monkeypatch.setenv("OPENSDV_CONFIG", str(site))
    assert load_settings().broker.port == 50010


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[broker\nport = 1", "site.toml: invalid TOML"),
        ("[broker]\nport = 70000", "broker.port: Input should be less than or equal to 65535 (got 70000)"),
        ("colour = 'red'", "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, content: str, problem: str) -> None:
    site = tmp_path / "site.toml"
    site.write_text(content)
    with pytest.raises(
        ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        load_settings(site)


def test_missing_named_file_and_bad_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="nope.toml: configuration file not found"):
        load_settings(tmp_path / "nope.toml")
    monkeypatch.setenv("OPENSDV_BROKER__PORT", "many")
    with pytest.raises(ConfigError, match="broker.port: Input should be a valid integer"):
        load_settings()
