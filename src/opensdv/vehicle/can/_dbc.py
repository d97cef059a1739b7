"""Loading CAN databases: opendbc's real OEM definitions (generated in memory) and our own files.

opendbc keeps many DBCs as templates that ``IMPORT`` shared parts; its generator assembles them in
memory. Some of the results need small fixes before ``cantools`` parses them; each fix is listed in
``FIXES`` with the reason, applied in order, and tested.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import cantools
from cantools.database import Database
from cantools.database.errors import Error as CantoolsError

from opensdv.files import FileFormatError, read_text
from opensdv.vehicle.can._errors import CanDatabaseError

__all__ = ["FIXES", "CanDatabaseError", "DbcFix", "apply_fixes", "load_dbc", "opendbc_names"]

OPENDBC_PREFIX = "opendbc:"
MAX_DBC_BYTES = 2 * 1024 * 1024  # opendbc's largest is 0.8 MB; cantools takes seconds a megabyte


@dataclass(frozen=True)
class DbcFix:
    name: str
    why: str
    apply: Callable[[str], str]


def _drop_nameless_signal_comments(text: str) -> str:
    return re.sub(r'^CM_ SG_ \d+ ".*?";[ \t]*$', "", text, flags=re.MULTILINE)


def _mark_wide_ids_extended(text: str) -> str:
    def widen(match: re.Match[str]) -> str:
        frame_id = int(match.group(1))
        return f"BO_ {frame_id | 0x80000000 if 0x7FF < frame_id < 0x80000000 else frame_id} "

    return re.sub(r"^BO_ (\d+) ", widen, text, flags=re.MULTILINE)


FIXES: tuple[DbcFix, ...] = (
    DbcFix(
        "nameless-signal-comment",
        'some Honda templates comment a signal without naming it (CM_ SG_ 304 "...";), which is not '
        "DBC syntax; the comment is dropped",
        _drop_nameless_signal_comments,
    ),
    DbcFix(
        "wide-standard-id",
        "some CAN-FD templates give 11-bit (standard) frames ids above 0x7FF; DBC marks 29-bit ids with "
        "bit 31, so those ids are flagged extended, as the bus carries them",
        _mark_wide_ids_extended,
    ),
)


def apply_fixes(text: str) -> str:
    """The documented fixes for known defects of public DBC files, applied before parsing."""
    for fix in FIXES:
        text = fix.apply(text)
    return text


@cache
def _opendbc_sources() -> dict[str, str]:
    from opendbc.dbc.generator.generator import generate_all  # type: ignore[import-untyped]

    generated = {name.removesuffix("_generated"): text for name, text in generate_all().items()}
    folder = resources.files("opendbc") / "dbc"
    for entry in folder.iterdir():
        if entry.name.endswith(".dbc"):
            generated.setdefault(entry.name.removesuffix(".dbc"), entry.read_text(encoding="utf-8"))
    return generated


def opendbc_names() -> list[str]:
    """Every DBC opendbc provides (files and generated ones), by name."""
    return sorted(_opendbc_sources())


def _own(name: str) -> Path:
    return Path(str(resources.files("opensdv.vehicle.can") / "data" / f"{name}.dbc"))


@cache
def load_dbc(source: str) -> Database:
    """``opendbc:NAME`` (e.g. ``opendbc:nissan_leaf_2018``), a DBC shipped with OpenSDV by name
    (``opensdv_components``), or a path to a ``.dbc`` file."""
    if source.startswith(OPENDBC_PREFIX):
        name = source.removeprefix(OPENDBC_PREFIX)
        sources = _opendbc_sources()
        if name not in sources:
            close = [n for n in sources if name.split("_")[0] in n][:8]
            raise CanDatabaseError(
                f"opendbc has no DBC named {name!r} (similar: {', '.join(close) or 'none'})"
            )
        text, origin = sources[name], source
    else:
        path = _own(source) if "/" not in source and not source.endswith(".dbc") else Path(source)
        try:
            text, origin = read_text(path, MAX_DBC_BYTES), str(path)
        except FileFormatError as exc:
            raise CanDatabaseError(str(exc)) from None
    try:
        database = cantools.database.load_string(apply_fixes(text), "dbc", strict=True)
    except (CantoolsError, ValueError) as exc:
        raise CanDatabaseError(f"{origin}: cannot parse DBC: {exc}") from None
    if not isinstance(database, Database):
        raise CanDatabaseError(f"{origin}: not a CAN database")
    return database
