"""Every command that reads a file, given malformed ones as a careless user or an attacker would:
binary bytes, nesting deep enough to exhaust the decoder's recursion, a "billion laughs" YAML, a
file larger than any real one, an empty one. Each must end in one clear line naming the file and
a non-zero exit, within bounds (the limits in ``opensdv.files``), never a traceback or a hang."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opensdv.cli import app
from opensdv.cloud.energy.planning.sessions import MAX_SLOT, SessionError, load_sessions
from opensdv.errors import OpenSDVError
from opensdv.files import MAX_YAML_NODES, FileFormatError, parse_json, parse_toml, parse_yaml
from opensdv.model._files import read_document
from opensdv.vehicle.apps.manifest import load_manifest

BINARY = bytes(range(256)) * 8
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)  # 9 ** 9 nodes once expanded
MALFORMED = {
    "binary": lambda suffix: BINARY,
    "deep": lambda suffix: (b"a = " if suffix == ".toml" else b"") + b"[" * 100_000,
    "laughs": lambda suffix: LAUGHS.encode(),
    "empty": lambda suffix: b"",
    "huge": lambda suffix: b"#" * (33 * 1024 * 1024),
}

# (a name, the suffixes it reads, the command line for a file); {f} is the file
COMMANDS: list[tuple[str, tuple[str, ...], list[str]]] = [
    ("vss validate", (".json", ".yaml"), ["vss", "validate", "{f}"]),
    ("components list --catalog", (".json", ".yaml"), ["components", "list", "--catalog", "{f}"]),
    ("components check", (".yaml",), ["components", "check", "{f}"]),
    ("can map --mapping", (".yaml",), ["can", "map", "--mapping", "{f}"]),
    ("energy passport-check", (".json",), ["energy", "passport-check", "{f}"]),
    ("energy plan", (".csv", ".json"), ["energy", "plan", "{f}"]),
    ("energy plan --site", (".yaml",), ["energy", "plan", "{sessions}", "--site", "{f}"]),
    ("ota campaign create", (".yaml", ".json"), ["ota", "campaign", "create", "{f}"]),
    ("twin run --cycle", (".csv",), ["twin", "run", "nissan-leaf-40", "--cycle", "{f}", "--plot", "{tmp}/p.png"]),
    ("--config", (".toml",), ["--config", "{f}", "vss", "tree"]),
    ("stations simulate --credentials", (".toml",), ["energy", "stations", "simulate", "--credentials", "{f}", "--ca", "{f}"]),
    ("app package", ("app.toml",), ["app", "package", "{dir}", "-o", "{tmp}/set.tar.gz"]),
    ("app run", ("app.toml",), ["app", "run", "{dir}"]),
]
CASES = [
    pytest.param(args, suffix, kind, id=f"{name} {suffix} {kind}")
    for name, suffixes, args in COMMANDS
    for suffix in suffixes
    for kind in MALFORMED
    if not (kind == "empty" and suffix == ".toml")  # an empty TOML file is a valid empty one
]
SESSIONS = "id,station,arrival,departure,kwh_requested,max_kw\na,S1,0,12,10,7\n"


def _refused(result: object, where: str) -> str:
    exception = getattr(result, "exception", None)
    assert isinstance(exception, OpenSDVError), f"not a clear refusal: {exception!r}"
    message = str(exception)
    assert "\n" not in message and where in message, message
    return message


@pytest.mark.parametrize(("args", "suffix", "kind"), CASES)
def test_a_malformed_file_is_refused_in_one_line_naming_it(
    tmp_path: Path, args: list[str], suffix: str, kind: str
) -> None:
    directory = tmp_path / "app"
    directory.mkdir()
    file = directory / suffix if suffix == "app.toml" else tmp_path / f"input{suffix}"
    file.write_bytes(MALFORMED[kind](suffix))
    (tmp_path / "sessions.csv").write_text(SESSIONS)
    values = {"f": str(file), "dir": str(directory), "tmp": str(tmp_path), "sessions": str(tmp_path / "sessions.csv")}
    env = {"OPENSDV_DATA_DIR": str(tmp_path / "data")}
    if args[0] == "ota":
        assert CliRunner().invoke(app, ["ota", "init"], env=env).exit_code == 0
    result = CliRunner().invoke(app, [a.format(**values) for a in args], env=env)
    _refused(result, str(file))


def test_a_session_far_in_the_future_is_refused_before_any_plan_is_made(tmp_path: Path) -> None:
    file = tmp_path / "sessions.csv"
    file.write_text("id,station,arrival,departure,kwh_requested,max_kw\na,S1,0,1000000000,10,7\n")
    with pytest.raises(SessionError, match=f"past slot {MAX_SLOT}") as refused:
        load_sessions(file)
    assert str(file) in str(refused.value)


def test_a_dbc_larger_than_any_real_one_is_refused_unparsed(tmp_path: Path) -> None:
    dbc = tmp_path / "big.dbc"
    dbc.write_text('VERSION ""\n' + "".join(f"BO_ {i | 0x80000000} M{i}: 8 X\n" for i in range(200_000)))
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(f"id: x\ndescription: x\ndbc: [{dbc}]\nsignals: []\n")
    result = CliRunner().invoke(app, ["can", "map", "--check", "--mapping", str(mapping)])
    assert result.exit_code == 1 and "FAIL" in result.output and "Traceback" not in result.output
    assert "bytes: not a file of this kind" in " ".join(result.output.split())


def test_an_app_name_is_checked_before_anything_is_written(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["app", "new", "my_app", "--dir", str(tmp_path)])
    message = _refused(result, "'my_app'")
    assert "a lower-case letter, then lower-case letters, digits or '-'" in message and "'my-app'" in message
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert CliRunner().invoke(app, ["app", "new", "my-app", "--dir", str(tmp_path)]).exit_code == 0
    load_manifest(tmp_path / "my-app")


def test_error_lines_keep_brackets(tmp_path: Path) -> None:
    """rich would read ``[a-z]`` in a message as markup and drop it."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "opensdv", "app", "new", "Bad[x]", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "'Bad[x]'" in done.stderr and "Traceback" not in done.stderr


def test_a_campaign_error_is_one_line_naming_each_field(tmp_path: Path) -> None:
    env = {"OPENSDV_DATA_DIR": str(tmp_path / "data")}
    assert CliRunner().invoke(app, ["ota", "init"], env=env).exit_code == 0
    spec = tmp_path / "campaign.yaml"
    spec.write_text("id: c1\nimage: [1]\nstages: [100]\nmode: sometimes\n")
    message = _refused(CliRunner().invoke(app, ["ota", "campaign", "create", str(spec)], env=env), str(spec))
    assert "mode" in message and "image" in message and "errors.pydantic.dev" not in message


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_fuzz_every_document_decoder_answers_or_refuses(tmp_path: Path, data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    parsers: list[Callable[[str, str], object]] = [parse_json, parse_yaml, parse_toml]
    for parse in parsers:
        try:
            parse(text, "fuzz")
        except FileFormatError as exc:
            assert str(exc).startswith("fuzz")
    for name in ("doc.json", "doc.yaml", "sessions.csv", "sessions.json"):
        (tmp_path / name).write_bytes(data)
        loader = load_sessions if name.startswith("sessions") else read_document
        try:
            loader(tmp_path / name)
        except OpenSDVError as exc:
            assert str(tmp_path / name) in str(exc)
    (tmp_path / "app.toml").write_bytes(data)
    try:
        load_manifest(tmp_path)
    except OpenSDVError as exc:
        assert "app.toml" in str(exc)


def test_yaml_aliases_within_bounds_still_load() -> None:
    shared = parse_yaml("base: &b {a: 1}\nx: *b\ny: [*b, *b]\n", "f")
    assert shared == {"base": {"a": 1}, "x": {"a": 1}, "y": [{"a": 1}, {"a": 1}]}
    with pytest.raises(FileFormatError, match=f"{MAX_YAML_NODES:,}"):
        parse_yaml(LAUGHS, "f")
    with pytest.raises(FileFormatError, match="contains it"):
        parse_yaml("a: &a [1, *a]\n", "f")


def test_app_run_fails_when_the_app_never_starts(tmp_path: Path) -> None:
    assert CliRunner().invoke(app, ["app", "new", "crashy", "--dir", str(tmp_path)]).exit_code == 0
    with (tmp_path / "crashy" / "app.toml").open("a") as manifest:
        manifest.write("\n[limits]\nmax_restarts = 0\n")
    (tmp_path / "crashy" / "crashy.py").write_text('raise RuntimeError("boom at import")\n')
    result = CliRunner().invoke(app, ["app", "run", str(tmp_path / "crashy"), "--broker", "127.0.0.1:1"])
    assert "crashy failed: exited with 1" in _refused(result, "crashy.log")
