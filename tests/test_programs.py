"""The long-running programs' logs: one JSON object a line when asked, and a clear refusal of an
unknown format."""

from __future__ import annotations

import json
import logging

import pytest

from opensdv.errors import OpenSDVError
from opensdv.programs import configure_logging


def test_json_logs_are_one_object_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    configure_logging("json")
    try:
        logging.getLogger("opensdv.test").info("vehicle %s started", "JN1NSSAN0DD000001")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("opensdv.test").exception("failed")
    finally:
        root.handlers[:], root.level = handlers, level
    lines = capsys.readouterr().err.splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "vehicle JN1NSSAN0DD000001 started" and first["level"] == "info"
    assert first["logger"] == "opensdv.test" and isinstance(first["at"], float)
    assert second["level"] == "error" and "ValueError: boom" in second["exception"]


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(OpenSDVError, match="--log-format must be text or json, got 'xml'"):
        configure_logging("xml")
