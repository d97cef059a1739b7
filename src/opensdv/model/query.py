"""Conditions over VSS signals: the databroker query language of ``sdv.databroker.v1`` (what
Velocitas apps subscribe with), and the same expressions alone (``compile_condition``: data
collection campaigns, ``Vehicle.Speed > 80 and not Vehicle.ADAS.CruiseControl.IsActive``).

A subset of SQL, as KUKSA's databroker defined it::

    SELECT Vehicle.Speed, Vehicle.Cabin.Seat.Row1.DriverSide.Position AS pos, (Vehicle.Speed = 0) AS parked
    WHERE Vehicle.Speed BETWEEN 0 AND 10 AND NOT Vehicle.Cabin.Door.Row1.DriverSide.IsOpen

Parsed by a small recursive-descent parser into a typed tree, checked against the catalog (every
path known, every operand of the right type) and evaluated on the current values: never ``eval``.
Missing values make a comparison unknown (SQL's three-valued logic); a row is sent only when the
``WHERE`` condition is true. Subqueries and ``LAG()`` of KUKSA's grammar are refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from opensdv.model._files import ModelError
from opensdv.model.vss import VssCatalog

__all__ = [
    "MAX_QUERY_LENGTH",
    "CompiledCondition",
    "CompiledQuery",
    "QueryError",
    "compile_condition",
    "compile_query",
    "previous_key",
]

MAX_QUERY_LENGTH = 4096
MAX_DEPTH = 32
MAX_ITEMS = 100

Kind = Literal["number", "string", "boolean", "array"]
Value = bool | int | float | str | None

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | '(?P<single>[^']*)'
      | "(?P<double>[^"]*)"
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<op><>|!=|==|<=|>=|=|<|>|\(|\)|,)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"SELECT", "WHERE", "AS", "AND", "OR", "NOT", "BETWEEN", "TRUE", "FALSE"}
_UNSUPPORTED = {"LAG": "LAG() is not supported", "FROM": "there is no FROM: name the signals in SELECT"}


class QueryError(ModelError):
    """A query that does not parse or does not type-check, with the position (0-based) it fails at."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"query, at character {position + 1}: {message}")
        self.position = position


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, name, keyword, op, end
    text: str
    position: int


# ------------------------------------------------------------------------------------ the tree


@dataclass(frozen=True)
class Literal_:
    value: bool | float | int | str


@dataclass(frozen=True)
class Signal:
    path: str
    position: int
    previous: bool = False  # previous(path): its value before its latest change (conditions only)

    @property
    def key(self) -> str:
        """Where its value is found in the values an expression is evaluated with."""
        return previous_key(self.path) if self.previous else self.path


def previous_key(path: str) -> str:
    """The key under which evaluation looks up ``previous(path)``: whoever evaluates keeps it."""
    return f"previous({path})"


@dataclass(frozen=True)
class Compare:
    operator: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Between:
    operand: Expr
    low: Expr
    high: Expr
    negated: bool


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class Logical:
    operator: Literal["AND", "OR"]
    operands: tuple[Expr, ...]


Expr = Literal_ | Signal | Compare | Between | Not | Logical


@dataclass(frozen=True)
class Item:
    expr: Expr
    name: str


# ---------------------------------------------------------------------------------- the parser


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            start = len(text) - len(text[position:].lstrip())
            raise QueryError(f"unexpected {text[start]!r}", start)
        kind = match.lastgroup or ""
        start = match.start(kind)
        raw = match.group(kind)
        if kind in ("single", "double"):
            tokens.append(_Token("string", raw, start))
        elif kind == "name" and raw.upper() in _KEYWORDS:
            tokens.append(_Token("keyword", raw.upper(), start))
        else:
            tokens.append(_Token(kind, raw, start))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, *, previous: bool = False) -> None:
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0
        self.previous = previous  # conditions may read previous(path)

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def accept(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.token
        if token.kind == kind and (text is None or token.text == text):
            self.index += 1
            return token
        return None

    def expect(self, kind: str, text: str, what: str) -> _Token:
        token = self.accept(kind, text)
        if token is None:
            raise QueryError(f"expected {what}, found {self.describe()}", self.token.position)
        return token

    def describe(self) -> str:
        return "the end of the query" if self.token.kind == "end" else repr(self.token.text)

    def query(self) -> tuple[list[Item], Expr | None]:
        self.expect("keyword", "SELECT", "SELECT")
        items = [self.item(0)]
        while self.accept("op", ","):
            if len(items) >= MAX_ITEMS:
                raise QueryError(f"more than {MAX_ITEMS} fields", self.token.position)
            items.append(self.item(len(items)))
        where = self.expression() if self.accept("keyword", "WHERE") else None
        if self.token.kind != "end":
            raise QueryError(f"unexpected {self.describe()}", self.token.position)
        return items, where

    def item(self, index: int) -> Item:
        expr = self.expression()
        if self.accept("keyword", "AS"):
            alias = self.accept("name")
            if alias is None:
                raise QueryError(f"expected a name after AS, found {self.describe()}", self.token.position)
            return Item(expr, alias.text)
        return Item(expr, expr.path if isinstance(expr, Signal) else f"field_{index}")

    def expression(self) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"nested deeper than {MAX_DEPTH}", self.token.position)
        try:
            return self.logical("OR", lambda: self.logical("AND", self.negation))
        finally:
            self.depth -= 1

    def logical(self, operator: Literal["AND", "OR"], operand: Callable[[], Expr]) -> Expr:
        operands = [operand()]
        while self.accept("keyword", operator):
            operands.append(operand())
        return operands[0] if len(operands) == 1 else Logical(operator, tuple(operands))

    def negation(self) -> Expr:
        if self.accept("keyword", "NOT"):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QueryError(f"nested deeper than {MAX_DEPTH}", self.token.position)
            try:
                return Not(self.negation())
            finally:
                self.depth -= 1
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.primary()
        operator = self.token
        if operator.kind == "op" and operator.text in ("=", "==", "<>", "!=", "<", "<=", ">", ">="):
            self.index += 1
            canonical = {"!=": "<>", "==": "="}.get(operator.text, operator.text)
            return Compare(canonical, left, self.primary())
        negated = bool(self.accept("keyword", "NOT"))
        if self.accept("keyword", "BETWEEN"):
            low = self.primary()
            self.expect("keyword", "AND", "AND in BETWEEN ... AND ...")
            return Between(left, low, self.primary(), negated)
        if negated:
            raise QueryError(f"expected BETWEEN after NOT, found {self.describe()}", self.token.position)
        return left

    def primary(self) -> Expr:
        token = self.token
        self.index += 1
        if token.kind == "number":
            number = float(token.text)
            return Literal_(int(token.text) if number.is_integer() and re.fullmatch(r"-?\d+", token.text) else number)
        if token.kind == "string":
            return Literal_(token.text)
        if token.kind == "keyword" and token.text in ("TRUE", "FALSE"):
            return Literal_(token.text == "TRUE")
        if token.kind == "name":
            for word, why in _UNSUPPORTED.items():
                if token.text.upper() == word:
                    raise QueryError(why, token.position)
            if token.text.lower() == "previous" and self.token.kind == "op" and self.token.text == "(":
                if not self.previous:
                    raise QueryError("previous() is for conditions, not queries", token.position)
                self.index += 1
                name = self.accept("name")
                if name is None:
                    raise QueryError(f"previous() takes a signal, found {self.describe()}", self.token.position)
                self.expect("op", ")", "')'")
                return Signal(name.text, name.position, previous=True)
            return Signal(token.text, token.position)
        if token.kind == "op" and token.text == "(":
            if self.token.kind == "keyword" and self.token.text == "SELECT":
                raise QueryError("subqueries are not supported", self.token.position)
            inner = self.expression()
            self.expect("op", ")", "')'")
            return inner
        self.index -= 1
        raise QueryError(f"expected a signal, a number, a string or TRUE/FALSE, found {self.describe()}", token.position)


# ----------------------------------------------------------------------------- types and values


def _check(expr: Expr, catalog: VssCatalog) -> Kind:
    """The kind of ``expr``'s value; raises on unknown paths and mismatched operands."""
    if isinstance(expr, Literal_):
        if isinstance(expr.value, bool):
            return "boolean"
        return "string" if isinstance(expr.value, str) else "number"
    if isinstance(expr, Signal):
        leaf = catalog.get(expr.path)
        if leaf is None:
            raise QueryError(f"unknown VSS path {expr.path!r}", expr.position)
        if leaf.datatype.is_array:
            return "array"
        if leaf.datatype.base == "boolean":
            return "boolean"
        return "string" if leaf.datatype.base == "string" else "number"
    if isinstance(expr, Compare):
        left, right = _check(expr.left, catalog), _check(expr.right, catalog)
        if left != right or left == "array":
            raise QueryError(f"cannot compare a {left} with a {right}", _position(expr))
        if left == "boolean" and expr.operator not in ("=", "<>"):
            raise QueryError(f"booleans compare with = and <> only, not {expr.operator}", _position(expr))
        return "boolean"
    if isinstance(expr, Between):
        kinds = {_check(part, catalog) for part in (expr.operand, expr.low, expr.high)}
        if kinds != {"number"}:
            raise QueryError("BETWEEN takes numbers", _position(expr))
        return "boolean"
    operands = (expr.operand,) if isinstance(expr, Not) else expr.operands
    for operand in operands:
        if _check(operand, catalog) != "boolean":
            raise QueryError(f"{'NOT' if isinstance(expr, Not) else expr.operator} takes conditions", _position(operand))
    return "boolean"


def _position(expr: Expr) -> int:
    if isinstance(expr, Signal):
        return expr.position
    for part in vars(expr).values():
        if isinstance(part, Signal | Compare | Between | Not | Logical):
            return _position(part)
        if isinstance(part, tuple) and part:
            return _position(part[0])
    return 0


def _signals(expr: Expr) -> list[str]:
    if isinstance(expr, Signal):
        return [expr.path]
    if isinstance(expr, Literal_):
        return []
    parts = (
        [expr.left, expr.right] if isinstance(expr, Compare)
        else [expr.operand, expr.low, expr.high] if isinstance(expr, Between)
        else [expr.operand] if isinstance(expr, Not)
        else list(expr.operands)
    )  # fmt: skip
    return [path for part in parts for path in _signals(part)]


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "<>": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def _evaluate(expr: Expr, values: Mapping[str, Any]) -> Value:
    """The value of ``expr``; ``None`` where a signal has no value yet (and what depends on it)."""
    if isinstance(expr, Literal_):
        return expr.value
    if isinstance(expr, Signal):
        value = values.get(expr.key)
        return value if value is None or isinstance(value, bool | int | float | str) else None
    if isinstance(expr, Compare):
        left, right = _evaluate(expr.left, values), _evaluate(expr.right, values)
        return None if left is None or right is None else _COMPARE[expr.operator](left, right)
    if isinstance(expr, Between):
        operand, low, high = (_evaluate(part, values) for part in (expr.operand, expr.low, expr.high))
        if operand is None or low is None or high is None:
            return None
        return (low <= operand <= high) != expr.negated  # type: ignore[operator]
    if isinstance(expr, Not):
        inner = _evaluate(expr.operand, values)
        return None if inner is None else not inner
    results = [_evaluate(operand, values) for operand in expr.operands]
    decisive = expr.operator == "OR"  # OR: any True wins; AND: any False wins
    if decisive in results:
        return decisive
    return None if None in results else not decisive


@dataclass(frozen=True)
class CompiledQuery:
    items: tuple[Item, ...]
    where: Expr | None
    paths: tuple[str, ...]  # every signal the query reads, each once: what it subscribes to

    def row(self, values: Mapping[str, Any]) -> dict[str, Value] | None:
        """The fields to send for these current values, or ``None`` when the condition is not true."""
        if self.where is not None and _evaluate(self.where, values) is not True:
            return None
        return {item.name: _evaluate(item.expr, values) for item in self.items}

    def field_path(self, name: str) -> str | None:
        """The VSS path a field carries unchanged (a plain signal, maybe renamed), else ``None``."""
        item = next(item for item in self.items if item.name == name)
        return item.expr.path if isinstance(item.expr, Signal) else None


def compile_query(text: str, catalog: VssCatalog) -> CompiledQuery:
    """Parse and type-check ``text`` against ``catalog``; ``QueryError`` (an ``InvalidArgument``)
    names the first problem and where it is."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"longer than {MAX_QUERY_LENGTH} characters ({len(text)})", MAX_QUERY_LENGTH)
    items, where = _Parser(text).query()
    names = [item.name for item in items]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise QueryError(f"field name(s) used twice: {', '.join(repeated)}", 0)
    for item in items:
        _check(item.expr, catalog)
    if where is not None and _check(where, catalog) != "boolean":
        raise QueryError("WHERE needs a condition", _position(where))
    paths = [path for item in items for path in _signals(item.expr)]
    if where is not None:
        paths += _signals(where)
    return CompiledQuery(tuple(items), where, tuple(dict.fromkeys(paths)))


@dataclass(frozen=True)
class CompiledCondition:
    """A condition alone (no ``SELECT``): true, false or unknown (``None``) for some values."""

    expr: Expr
    paths: tuple[str, ...]  # every signal it reads, each once

    def holds(self, values: Mapping[str, Any]) -> bool | None:
        result = _evaluate(self.expr, values)
        return None if result is None else bool(result)


def compile_condition(text: str, catalog: VssCatalog) -> CompiledCondition:
    """A condition (``==``/``=``, ``!=``/``<>``, ``<`` ..., ``and``/``or``/``not``, ``BETWEEN``,
    parentheses, ``previous(path)``: the signal's value before its latest change) parsed and
    type-checked against ``catalog``; ``QueryError`` names the position."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"longer than {MAX_QUERY_LENGTH} characters ({len(text)})", MAX_QUERY_LENGTH)
    parser = _Parser(text, previous=True)
    expr = parser.expression()
    if parser.token.kind != "end":
        raise QueryError(f"unexpected {parser.describe()}", parser.token.position)
    if _check(expr, catalog) != "boolean":
        raise QueryError("a condition must be true or false (a comparison, or and/or/not of them)", _position(expr))
    return CompiledCondition(expr, tuple(dict.fromkeys(_signals(expr))))
