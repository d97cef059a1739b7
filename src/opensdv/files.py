"""Reading files people give the platform, within bounds.

Every loader (catalogs, mappings, DBCs, sessions, passports, campaigns, manifests, settings) reads
through here, so each kind of malformed input gets one clear error naming the file instead of a
traceback: bytes that are not UTF-8, a file far larger than any real one, nesting deep enough to
exhaust Python's recursion (JSON, TOML and YAML decoders all recurse), and YAML aliases that expand
a small file into billions of nodes ("billion laughs"), which no shipped or sensible file uses.
"""

from __future__ import annotations

import functools
import json
import tomllib
from pathlib import Path
from typing import Any

from opensdv.errors import OpenSDVError

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_YAML_NODES", "FileFormatError", "nesting_depth", "parse_json", "parse_toml",
           "parse_yaml", "read_text"]  # fmt: skip

MAX_FILE_BYTES = 32 * 1024 * 1024  # the VSS 6.0 catalog is 0.3 MB, the largest opendbc DBC under 1 MB
MAX_DEPTH = 64  # a VSS branch nests about 8 deep
MAX_YAML_NODES = 1_000_000  # after aliases are expanded


class FileFormatError(OpenSDVError):
    """A file that cannot be read as what it should be; the message names the file."""

    def __init__(self, source: str | Path, where: str, problem: str) -> None:
        self.source, self.where, self.problem = str(source), where, problem
        super().__init__(f"{source}: {where}: {problem}" if where else f"{source}: {problem}")


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file as UTF-8 text, refused if missing, unreadable, larger than ``max_bytes`` or not UTF-8."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise FileFormatError(path, "", "file not found") from None
    except OSError as exc:
        raise FileFormatError(path, "", f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise FileFormatError(path, "", f"larger than {max_bytes:,} bytes: not a file of this kind")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileFormatError(path, f"byte {exc.start}", "not UTF-8 text (a binary file?)") from None


def nesting_depth(value: object) -> int:
    """How deeply lists and dicts nest in ``value`` (counted up to just past ``MAX_DEPTH``), without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                pending.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _shallow(value: Any, source: str | Path) -> Any:
    if nesting_depth(value) > MAX_DEPTH:
        raise FileFormatError(source, "", f"nested deeper than {MAX_DEPTH} levels")
    return value


def parse_json(text: str, source: str | Path) -> Any:
    """JSON text from ``source``, at most ``MAX_DEPTH`` deep."""
    try:
        return _shallow(json.loads(text), source)
    except json.JSONDecodeError as exc:
        raise FileFormatError(source, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise FileFormatError(source, "", f"nested deeper than {MAX_DEPTH} levels") from None


def parse_toml(text: str, source: str | Path) -> dict[str, Any]:
    """TOML text from ``source``, at most ``MAX_DEPTH`` deep."""
    try:
        return _shallow(tomllib.loads(text), source)  # type: ignore[no-any-return]
    except tomllib.TOMLDecodeError as exc:
        raise FileFormatError(source, "", f"invalid TOML: {exc}") from None
    except RecursionError:
        raise FileFormatError(source, "", f"nested deeper than {MAX_DEPTH} levels") from None


@functools.cache
def _bounded_loader() -> type[Any]:
    """PyYAML's safe loader, refusing a document whose aliases expand past ``MAX_YAML_NODES``
    nodes or which nests deeper than ``MAX_DEPTH``, before anything is constructed. (Made on
    first use: the command line starts without importing PyYAML.)"""
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        def compose_document(self) -> yaml.Node | None:
            node: yaml.Node | None = super().compose_document()
            if node is not None:
                _check_expansion(node)
            return node

    return BoundedLoader


def _check_expansion(root: Any) -> None:
    """Count the nodes ``root`` expands to (an alias counts its whole target each time) in one
    depth-first pass over the distinct nodes; refuse past the limits, and recursive aliases."""
    import yaml

    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if children_done:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(MAX_YAML_NODES + 1, 1 + sum(sizes[id(c)] for c in _children(node)))
            continue
        if depth > MAX_DEPTH:
            raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels")
        open_nodes.add(id(node))
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise yaml.YAMLError("an alias refers to a node that contains it")
            if id(child) not in sizes:
                stack.append((child, depth + 1, False))
    if sizes[id(root)] > MAX_YAML_NODES:
        raise yaml.YAMLError(f"its aliases expand to more than {MAX_YAML_NODES:,} nodes")


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_yaml(text: str, source: str | Path) -> Any:
    """YAML text from ``source`` (safe tags only), at most ``MAX_DEPTH`` deep and
    ``MAX_YAML_NODES`` nodes once aliases are expanded."""
    import yaml

    try:
        return yaml.load(text, Loader=_bounded_loader())  # a SafeLoader, bounded
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise FileFormatError(source, where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    except RecursionError:
        raise FileFormatError(source, "", f"nested deeper than {MAX_DEPTH} levels") from None
