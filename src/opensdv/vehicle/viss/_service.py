"""VISS v3 requests served from the broker core: the same catalog, permissions, tokens and safety
guard as the gRPC APIs. One ``VissSession`` per WebSocket connection holds its subscriptions; HTTP
requests use a session of their own for the one request."""

from __future__ import annotations

import asyncio
import operator
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from opensdv.clock import Clock, SystemClock
from opensdv.model.vss import EntryType, VssLeaf
from opensdv.vehicle.broker._core import Broker
from opensdv.vehicle.broker._errors import (
    BrokerError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from opensdv.vehicle.broker._permissions import Action, Permissions
from opensdv.vehicle.broker._subscription import Datapoint, Subscription
from opensdv.vehicle.broker.grpc._errors import Authenticator
from opensdv.vehicle.viss._protocol import (
    INLINE_NOT_AVAILABLE,
    Filter,
    Request,
    VissError,
    decode,
    format_value,
    parse_request,
    parse_value,
    timestamp,
)

__all__ = ["MAX_SUBSCRIPTIONS_PER_SESSION", "VissService", "VissSession"]

MAX_SUBSCRIPTIONS_PER_SESSION = 100
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le,
}  # fmt: skip
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _as_viss_error(error: BrokerError) -> VissError:
    if isinstance(error, Unauthenticated):
        return VissError("401", "invalid_token", str(error))
    if isinstance(error, PermissionDenied):  # the token's scope, or the safety guard
        return VissError("403", "forbidden_request", str(error))
    if isinstance(error, NotFound):
        return VissError("404", "unavailable_data", str(error))
    if isinstance(error, ResourceExhausted):
        return VissError("429", "too_many_requests", str(error))
    if isinstance(error, Unavailable):
        return VissError("503", "service_unavailable", str(error))
    if isinstance(error, InvalidArgument):
        return VissError("400", "invalid_data", str(error))
    return VissError("503", "service_unavailable", str(error))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else None


class VissService:
    """What a VISS v3 request does, independent of the transport (WebSocket, HTTP)."""

    def __init__(self, broker: Broker, authenticator: Authenticator, *, clock: Clock | None = None,
                 requires_token: bool = True) -> None:  # fmt: skip
        self.broker = broker
        self.auth = authenticator
        self.clock = clock or SystemClock()
        self.requires_token = requires_token  # in-line error reporting only where no access control applies

    def permissions(self, token: str | None) -> Permissions:
        header = None if token is None else (token if token.lower().startswith("bearer ") else f"Bearer {token}")
        try:
            return self.auth.permissions(header)
        except Unauthenticated as exc:
            raise VissError("401", "invalid_token", str(exc)) from None

    def paths(self, request: Request) -> list[str]:
        """The leaves a request addresses: its path (a leaf, or every leaf below a branch) or, with
        a paths filter, each relative pattern under it (``*`` one element), first pattern first."""
        catalog = self.broker.catalog
        patterns = [f"{request.path}.{p}" for p in request.filter.paths] or [request.path]
        found: list[str] = []
        for pattern in patterns:
            matches = [leaf.path for leaf in catalog.matching(pattern)] if pattern not in catalog else [pattern]
            if not matches:
                raise VissError("404", "unavailable_data", f"{pattern}: no such VSS node")
            found.extend(matches)
        return list(dict.fromkeys(found))

    def data(self, paths: list[str], points: Mapping[str, Datapoint | None], inline: bool) -> dict[str, Any] | list[dict[str, Any]]:
        """The ``data`` member: one object for one path, a list for several."""
        objects = []
        now = timestamp(self.clock.time())
        for path in paths:
            point = points.get(path)
            if point is None:
                if not inline:
                    raise VissError("404", "unavailable_data", f"{path}: data temporarily unaccessible (no value yet)")
                objects.append({"path": path, "dp": {"value": INLINE_NOT_AVAILABLE, "ts": now}})
                continue
            objects.append({"path": path, "dp": {"value": format_value(point.value), "ts": timestamp(point.timestamp)}})
        return objects[0] if len(objects) == 1 else objects

    def read(self, request: Request) -> dict[str, Any]:
        permissions = self.permissions(request.authorization)
        if request.filter.metadata_depth is not None:
            return {"metadata": self.metadata(request.path, request.filter.metadata_depth, permissions)}
        paths = self.paths(request)
        try:
            points = {path: self.broker.get(path, permissions) for path in paths}
        except BrokerError as exc:
            raise _as_viss_error(exc) from None
        return {"data": self.data(paths, points, inline=len(paths) > 1 and not self.requires_token)}

    def metadata(self, root: str, depth: int, permissions: Permissions) -> dict[str, Any]:
        """The subtree at ``root`` as a VSS JSON tree, ``depth`` generations deep (0: all)."""
        leaves = [leaf for leaf in self.broker.catalog.matching(root) if permissions.allows(Action.READ, leaf.path)]
        if root in self.broker.catalog:
            leaves = [self.broker.catalog.leaf(root)]
        if not leaves:
            raise VissError("404", "unavailable_data", f"{root}: no such VSS node, or none the token may read")
        base = root.split(".")[:-1]
        tree: dict[str, Any] = {}
        for leaf in leaves:
            parts = leaf.path.split(".")[len(base):]
            if depth and len(parts) > depth:
                continue
            node = tree
            for branch in parts[:-1]:
                node = node.setdefault(branch, {"type": "branch", "children": {}})["children"]
            node[parts[-1]] = _leaf_metadata(leaf)
        return tree

    def write(self, request: Request) -> dict[str, Any]:
        permissions = self.permissions(request.authorization)
        try:
            leaf = self.broker.leaf(request.path)
        except BrokerError as exc:
            raise _as_viss_error(exc) from None
        if leaf.entry_type is not EntryType.ACTUATOR:
            raise VissError("403", "forbidden_request", f"{leaf.path} is a {leaf.entry_type}: read-only")
        value = parse_value(leaf, request.value)
        try:
            self.broker.set_target({leaf.path: value}, permissions)
        except BrokerError as exc:
            raise _as_viss_error(exc) from None
        return {}

    def session(self, send: Send) -> VissSession:
        return VissSession(self, send)


def _leaf_metadata(leaf: VssLeaf) -> dict[str, Any]:
    fields: dict[str, Any] = {"type": str(leaf.entry_type), "datatype": str(leaf.datatype), "description": leaf.description}
    for name in ("unit", "min", "max", "allowed"):
        value = getattr(leaf, name)
        if value is not None:
            fields[name] = format_value(value)
    return fields


class VissSession:
    """One client's conversation: requests in, responses and subscription events out via ``send``."""

    def __init__(self, service: VissService, send: Send) -> None:
        self.service = service
        self.send = send
        self._subscriptions: dict[str, tuple[asyncio.Task[None], Subscription | None]] = {}

    async def handle(self, message: object) -> dict[str, Any]:
        """The response to one message (an error response when it fails); events go out via ``send``."""
        try:
            message = decode(message)
        except VissError as exc:
            return {"action": "error", "error": exc.as_json(), "ts": timestamp(self.service.clock.time())}
        action, request_id = _echo(message)
        try:
            request = parse_request(message)
            action = request.action
            if request.action == "get":
                body = self.service.read(request)
            elif request.action == "set":
                body = self.service.write(request)
            elif request.action == "subscribe":
                body = {"subscriptionId": self._subscribe(request)}
            else:
                body = self._unsubscribe(request.subscription_id)
        except VissError as exc:
            body = {"error": exc.as_json()}
        response = {"action": action, **body, "ts": timestamp(self.service.clock.time())}
        if request_id is not None:
            response["requestId"] = request_id
        return response

    def _subscribe(self, request: Request) -> str:
        if len(self._subscriptions) >= MAX_SUBSCRIPTIONS_PER_SESSION:
            raise VissError("429", "too_many_requests", f"a connection holds at most {MAX_SUBSCRIPTIONS_PER_SESSION} subscriptions")
        service = self.service
        permissions = service.permissions(request.authorization)
        paths = service.paths(request)
        if request.filter.period_ms is None and "*" in (request.filter.paths[:1] or ("",))[0]:
            raise VissError("400", "bad_request", "the first path triggers the filter: it must not hold a wildcard")
        try:
            for path in paths:
                permissions.require(Action.READ, path)
            stream = None if request.filter.period_ms is not None else service.broker.subscribe(paths, permissions)
        except BrokerError as exc:
            raise _as_viss_error(exc) from None
        subscription_id = uuid.uuid4().hex[:12]
        period = request.filter.period_ms
        if stream is None and period is not None:
            run = self._timebased(subscription_id, paths, period, permissions)
        else:
            assert stream is not None
            tracking = self._curvelog if request.filter.curvelog is not None else self._triggered
            run = tracking(subscription_id, paths, request.filter, stream)
        self._subscriptions[subscription_id] = (asyncio.create_task(run), stream)
        return subscription_id

    def _unsubscribe(self, subscription_id: str) -> dict[str, Any]:
        held = self._subscriptions.pop(subscription_id, None)
        if held is None:
            raise VissError("404", "unavailable_data", f"unknown subscription id {subscription_id!r}")
        task, stream = held
        task.cancel()
        if stream is not None:
            stream.close()
        return {"subscriptionId": subscription_id}

    async def _event(self, subscription_id: str, body: dict[str, Any]) -> None:
        await self.send({"action": "subscription", "subscriptionId": subscription_id, **body,
                         "ts": timestamp(self.service.clock.time())})  # fmt: skip

    async def _timebased(self, subscription_id: str, paths: list[str], period_ms: int, permissions: Permissions) -> None:
        while True:
            try:
                points = {path: self.service.broker.get(path, permissions) for path in paths}
                body: dict[str, Any] = {"data": self.service.data(paths, points, inline=True)}
            except BrokerError as exc:  # the token expired, say
                body = {"error": _as_viss_error(exc).as_json()}
            await self._event(subscription_id, body)
            await self.service.clock.sleep(period_ms / 1000)

    async def _curvelog(self, subscription_id: str, paths: list[str], rule: Filter, stream: Subscription) -> None:
        """Buffer every path's samples; when the first path's buffer holds ``bufsize``, send each
        path's series reduced to the points the curve needs within ``maxerr``."""
        assert rule.curvelog is not None
        maxerr, size = rule.curvelog
        buffers: dict[str, list[Datapoint]] = {path: [] for path in paths}
        async for update in stream:
            for path, point in update.items():
                if point is not None:
                    buffers[path].append(point)
            if len(buffers[paths[0]]) < size:
                continue
            data = []
            for path in paths:
                kept = curve_points(buffers[path], maxerr)
                dps = [{"value": format_value(p.value), "ts": timestamp(p.timestamp)} for p in kept]
                data.append({"path": path, "dp": dps[0] if len(dps) == 1 else dps})
                buffers[path] = []
            await self._event(subscription_id, {"data": data[0] if len(data) == 1 else data})

    async def _triggered(self, subscription_id: str, paths: list[str], rule: Filter, stream: Subscription) -> None:
        """change / range: evaluated on the first path's value; an event carries every path."""
        current: dict[str, Datapoint | None] = {}
        last: Any = None  # change: the trigger's previous value
        trigger = paths[0]
        async for update in stream:
            current.update(update)
            point = current.get(trigger)
            if trigger not in update or point is None:
                continue
            if rule.change is not None:
                fire = last is not None and _changed(rule.change, last, point.value)
                last = point.value
            else:
                fire = _in_range(rule, point.value)
            if fire:
                await self._event(subscription_id, {"data": self.service.data(paths, current, inline=True)})

    async def close(self) -> None:
        """The connection ended: every subscription with it."""
        tasks = [task for task, _ in self._subscriptions.values()]
        for subscription_id in list(self._subscriptions):
            self._unsubscribe(subscription_id)
        await asyncio.gather(*tasks, return_exceptions=True)


def curve_points(points: list[Datapoint], maxerr: float) -> list[Datapoint]:
    """Curve logging (Ramer-Douglas-Peucker on time): the fewest samples such that the line through
    them passes within ``maxerr`` of every sample, measured along the value axis. Samples that are
    not numbers are all kept."""
    if len(points) <= 2 or any(_number(p.value) is None for p in points):
        return list(points)
    keep = {0, len(points) - 1}
    pending = [(0, len(points) - 1)]
    while pending:
        first, last = pending.pop()
        t0, v0 = points[first].timestamp, float(points[first].value)
        t1, v1 = points[last].timestamp, float(points[last].value)
        worst, where = 0.0, -1
        for i in range(first + 1, last):
            t, v = points[i].timestamp, float(points[i].value)
            line = v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
            if abs(v - line) > worst:
                worst, where = abs(v - line), i
        if worst > maxerr:
            keep.add(where)
            pending += [(first, where), (where, last)]
    return [points[i] for i in sorted(keep)]


def _changed(change: tuple[str, float], previous: Any, value: Any) -> bool:
    """VISS's change filter: the difference current - previous against ``diff`` (booleans count
    as 0/1: ``gt 0`` is false->true); strings change only under ``ne 0``."""
    op, diff = change
    before, now = _number(previous), _number(value)
    if before is None or now is None:
        return op == "ne" and diff == 0 and value != previous
    return _COMPARE[op](now - before, diff)


def _in_range(rule: Filter, value: Any) -> bool:
    number = _number(value)
    if number is None:
        return False
    results = [_COMPARE[op](number, boundary) for op, boundary in rule.range]
    return any(results) if rule.range_any else all(results)


def _echo(message: object) -> tuple[str, str | None]:
    """The action and request id to answer with, even for a request too broken to parse."""
    if isinstance(message, dict):
        action = message.get("action")
        request_id = message.get("requestId")
        return (action if isinstance(action, str) and len(action) < 20 else "error",
                request_id if isinstance(request_id, str) and len(request_id) < 200 else None)  # fmt: skip
    return "error", None
