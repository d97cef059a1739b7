"""VISS v3 messages: what a request may say, the error table, values as the strings VISS sends.

Requests are checked here, before anything reaches the broker: the action, each field's type, the
filter's variant and parameters (COVESA's VISS v3.0 JSON schema, ``vissv3.0-schema.json``, is the
reference). A malformed request is a ``VissError`` with the spec's number and reason, never an
exception the transport would have to guess about.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from opensdv.files import nesting_depth
from opensdv.model.vss import VssLeaf

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Filter",
    "Request",
    "VissError",
    "decode",
    "format_value",
    "parse_request",
    "parse_value",
    "timestamp",
]

MAX_MESSAGE_BYTES = 64 * 1024
MAX_DEPTH = 8
LOGIC_OPS = ("eq", "ne", "gt", "gte", "lt", "lte")
INLINE_NOT_AVAILABLE = "viss-inline:Data-not-available"
_REASONS = {
    "400": ("bad_request", "invalid_data"),
    "401": ("invalid_token",),
    "403": ("forbidden_request",),
    "404": ("unavailable_data",),
    "408": ("request_timeout",),
    "429": ("too_many_requests",),
    "503": ("service_unavailable",),
}


class VissError(Exception):
    """An error response: the spec's number and reason, and a description for people."""

    def __init__(self, number: str, reason: str, description: str) -> None:
        assert reason in _REASONS[number], (number, reason)
        super().__init__(description)
        self.number, self.reason, self.description = number, reason, description

    def as_json(self) -> dict[str, str]:
        return {"number": self.number, "reason": self.reason, "description": self.description}


def bad(description: str) -> VissError:
    return VissError("400", "bad_request", description)


def timestamp(seconds: float) -> str:
    """ISO 8601 in UTC with milliseconds, as VISS writes them (``2025-02-04T15:48:43.739Z``)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_value(value: Any) -> str | list[str]:
    """Every VISS value is a string (arrays: a list of strings); booleans are ``true``/``false``."""
    if isinstance(value, list | tuple):
        return [str(format_value(item)) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value)) if math.isfinite(value) else str(value)
    return str(value)


def _scalar(leaf: VssLeaf, text: object) -> Any:
    if not isinstance(text, str):
        raise VissError("400", "invalid_data", f"{leaf.path}: VISS values are strings, got {text!r}")
    base = leaf.datatype.base
    try:
        if base == "boolean":
            if text not in ("true", "false"):
                raise ValueError
            return text == "true"
        if base == "string":
            return text
        if leaf.datatype.is_integer:
            return int(text)
        number = float(text)
        if not math.isfinite(number):
            raise ValueError
        return number
    except ValueError:
        raise VissError("400", "invalid_data", f"{leaf.path}: {text!r} is not a {leaf.datatype}") from None


def parse_value(leaf: VssLeaf, value: object) -> Any:
    """A set request's value (strings) as the leaf's datatype; the catalog's limits are the broker's to check."""
    if leaf.datatype.is_array:
        if not isinstance(value, list):
            raise VissError("400", "invalid_data", f"{leaf.path}: a {leaf.datatype} value is a list of strings")
        return [_scalar(leaf, item) for item in value]
    return _scalar(leaf, value)


@dataclass(frozen=True)
class Filter:
    """The filters of one request: at most one ``paths`` and one trigger (or ``metadata``)."""

    paths: tuple[str, ...] = ()  # relative to the request's path, ``*`` one element
    period_ms: int | None = None  # timebased
    change: tuple[str, float] | None = None  # logic-op, diff
    range: tuple[tuple[str, float], ...] = ()  # (logic-op, boundary) ...
    range_any: bool = False  # combination-op OR
    metadata_depth: int | None = None
    curvelog: tuple[float, int] | None = None  # maxerr, bufsize

    @property
    def triggers(self) -> bool:
        return self.period_ms is not None or self.change is not None or bool(self.range) or self.curvelog is not None


def _number(text: object, what: str) -> float:
    try:
        number = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise bad(f"{what} must be a number as a string, got {text!r}") from None
    if not math.isfinite(number):
        raise bad(f"{what} must be finite, got {text!r}")
    return number


def _op(condition: object, key: str) -> tuple[str, float]:
    if not isinstance(condition, dict) or set(condition) - {"logic-op", key, "combination-op"}:
        raise bad(f"expected {{\"logic-op\": ..., \"{key}\": ...}}, got {condition!r}")
    op = condition.get("logic-op")
    if op not in LOGIC_OPS:
        raise bad(f"logic-op must be one of {', '.join(LOGIC_OPS)}, got {op!r}")
    return str(op), _number(condition.get(key), key)


def _filter(raw: object) -> Filter:
    items = raw if isinstance(raw, list) else [raw]
    if not 1 <= len(items) <= 2:
        raise bad("filter: one filter object, or a list of two")
    chosen: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or "variant" not in item or "parameter" not in item:
            raise bad(f"filter: expected {{\"variant\": ..., \"parameter\": ...}}, got {item!r}")
        variant, parameter = item["variant"], item["parameter"]
        kind = "paths" if variant == "paths" else "trigger"
        if kind in chosen:
            raise bad("filter: at most one paths filter and one other")
        if variant == "paths":
            paths = [parameter] if isinstance(parameter, str) else parameter
            if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
                raise bad("filter paths: parameter is a path or a list of paths")
            chosen[kind] = {"paths": tuple(p.replace("/", ".") for p in paths)}
        elif variant == "timebased":
            if not isinstance(parameter, dict) or "period" not in parameter:
                raise bad('filter timebased: parameter is {"period": "<milliseconds>"}')
            period = _number(parameter["period"], "period")
            if not 10 <= period <= 86_400_000:
                raise bad(f"filter timebased: period must be 10 ms .. 24 h, got {parameter['period']!r}")
            chosen[kind] = {"period_ms": int(period)}
        elif variant == "change":
            chosen[kind] = {"change": _op(parameter, "diff")}
        elif variant == "range":
            conditions = parameter if isinstance(parameter, list) else [parameter]
            if len(conditions) not in (1, 2):
                raise bad("filter range: one condition or two")
            combination = conditions[0].get("combination-op", "AND") if isinstance(conditions[0], dict) else "AND"
            if combination not in ("AND", "OR"):
                raise bad(f"filter range: combination-op is AND or OR, got {combination!r}")
            chosen[kind] = {"range": tuple(_op(c, "boundary") for c in conditions), "range_any": combination == "OR"}
        elif variant == "metadata":
            chosen[kind] = {"metadata_depth": int(_number(parameter, "metadata parameter"))}
        elif variant == "curvelog":
            if not isinstance(parameter, dict) or set(parameter) != {"maxerr", "bufsize"}:
                raise bad('filter curvelog: parameter is {"maxerr": "<number>", "bufsize": "<count>"}')
            maxerr, size = _number(parameter["maxerr"], "maxerr"), _number(parameter["bufsize"], "bufsize")
            if maxerr < 0 or not 2 <= size <= 10_000 or not size.is_integer():
                raise bad("filter curvelog: maxerr at least 0, bufsize a whole number 2 .. 10,000")
            chosen[kind] = {"curvelog": (maxerr, int(size))}
        elif variant in ("history", "dynamic-metadata"):
            raise VissError("404", "unavailable_data", f"filter {variant}: unsupported feature")
        else:
            raise bad(f"filter: unknown variant {variant!r}")
    merged: dict[str, Any] = {}
    for part in chosen.values():
        merged |= part
    return Filter(**merged)


@dataclass(frozen=True)
class Request:
    action: Literal["get", "set", "subscribe", "unsubscribe"]
    request_id: str | None
    path: str = ""
    value: Any = None
    filter: Filter = field(default_factory=Filter)
    subscription_id: str = ""
    authorization: str | None = None


_FIELDS = {
    "get": {"path", "filter", "authorization", "dc", "requestId"},
    "set": {"path", "value", "authorization", "requestId"},
    "subscribe": {"path", "filter", "authorization", "dc", "requestId"},
    "unsubscribe": {"subscriptionId", "requestId", "authorization"},
}
_PATH = re.compile(r"^[A-Za-z0-9_]+([./][A-Za-z0-9_*]+)*$")


def decode(message: object) -> object:
    """A message's text as JSON (a decoded message passes through), within the size limit."""
    if not isinstance(message, str | bytes):
        return message
    if len(message) > MAX_MESSAGE_BYTES:
        raise bad(f"a message is at most {MAX_MESSAGE_BYTES} bytes")
    try:
        return json.loads(message)
    except (ValueError, RecursionError):
        raise bad("the message is not JSON") from None


def parse_request(message: object) -> Request:
    """A request (a decoded JSON object, or its text) checked field by field."""
    message = decode(message)
    if not isinstance(message, dict):
        raise bad("a message is a JSON object")
    if nesting_depth(message) > MAX_DEPTH:
        raise bad(f"the message is nested deeper than {MAX_DEPTH}")
    action = message.get("action")
    if not isinstance(action, str) or action not in _FIELDS:
        raise bad(f"action must be one of get, set, subscribe, unsubscribe; got {action!r}")
    unknown = sorted(set(message) - _FIELDS[action] - {"action"})
    if unknown:
        raise bad(f"{action}: unknown field(s) {', '.join(unknown)}")
    request_id = message.get("requestId")
    if request_id is not None and not isinstance(request_id, str):
        raise bad("requestId is a string")
    authorization = message.get("authorization")
    if authorization is not None and not isinstance(authorization, str):
        raise bad("authorization is a string (the access token)")
    if action == "unsubscribe":
        subscription = message.get("subscriptionId")
        if not isinstance(subscription, str) or not subscription:
            raise bad("unsubscribe needs a subscriptionId")
        return Request("unsubscribe", request_id, subscription_id=subscription, authorization=authorization)
    path = message.get("path")
    if not isinstance(path, str) or not _PATH.fullmatch(path) or len(path) > 1000:
        raise bad(f"{action}: path must be a VSS path (dots or slashes), got {path!r}")
    path = path.replace("/", ".")
    if action == "set":
        if "value" not in message:
            raise bad("set needs a value")
        return Request("set", request_id, path, value=message["value"], authorization=authorization)
    filters = _filter(message["filter"]) if "filter" in message else Filter()
    if action == "subscribe" and not filters.triggers:
        raise bad("subscribe needs a timebased, change, range or curvelog filter")
    if action == "get":
        if filters.triggers:
            raise bad("get takes only the paths and metadata filters")
        return Request("get", request_id, path, filter=filters, authorization=authorization)
    return Request("subscribe", request_id, path, filter=filters, authorization=authorization)
