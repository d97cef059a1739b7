"""The broker core: current values, subscriptions, providers and actuation, by VSS path.

No gRPC here; the wire adapters translate to and from these calls. Every call takes the caller's
``Permissions`` (``ALLOW_ALL`` in-process), so access is checked on every path, every time.
The core runs on one asyncio event loop; its methods are not thread-safe.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from opensdv.model.vss import MAX_PATH_LENGTH, EntryType, VssCatalog, VssLeaf, VssValueError
from opensdv.notify import Notifier
from opensdv.vehicle.broker._errors import (
    AlreadyExists,
    BrokerError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from opensdv.vehicle.broker._permissions import Action, Permissions
from opensdv.vehicle.broker._subscription import Datapoint, Subscription

__all__ = ["DEFAULT_BUFFER_SIZE", "MAX_BUFFER_SIZE", "Broker", "BrokerStatistics", "Provider"]

DEFAULT_BUFFER_SIZE = 100
MAX_BUFFER_SIZE = 1000  # as the KUKSA databroker


@dataclass(frozen=True)
class BrokerStatistics:
    signals: int
    signals_with_value: int
    subscriptions: int
    dropped_updates: int
    providers: int
    claimed_actuators: int
    published_values: int
    rejected_values: int


class Provider:
    """A connected feeder: publishes values and owns the actuators it claimed.

    Actuation requests for its actuators arrive through ``wait_actuation``. Closing it (the
    stream ended) releases its claims and marks the signals it published as stale.
    """

    def __init__(self, broker: Broker, permissions: Permissions, name: str) -> None:
        self.name = name
        self.permissions = permissions
        self.claimed: set[str] = set()
        self.published: set[str] = set()
        self._broker = broker
        self._actuations: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed = False

    def claim(self, paths: Iterable[str]) -> None:
        self._broker._claim(self, list(paths))

    def publish(self, values: Mapping[str, Any], timestamp: float | None = None) -> None:
        """All-or-nothing publish of current values."""
        self._broker.publish(values, self.permissions, timestamp=timestamp, provider=self)

    def publish_each(
        self, values: Mapping[str, Any], timestamp: float | None = None
    ) -> dict[str, BrokerError]:
        """Publish every valid value; return the refused ones with the reason."""
        return self._broker.publish_each(values, self.permissions, timestamp=timestamp, provider=self)

    def deliver(self, request: dict[str, Any]) -> None:
        self._actuations.put_nowait(request)

    async def wait_actuation(self) -> dict[str, Any]:
        """The next actuation request (path -> target value) for this provider's actuators."""
        return await self._actuations.get()

    def get_actuation_nowait(self) -> dict[str, Any] | None:
        try:
            return self._actuations.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._broker._release(self)


class ActuationCheck(Protocol):
    """What the broker asks before forwarding an actuation (``opensdv.vehicle.safety`` provides one)."""

    def check(self, path: str, value: Any, subject: str, current: Mapping[str, Datapoint]) -> Any:
        """The value to forward, or raise ``PermissionDenied`` with the reason."""
        ...

    def observe(self, points: Mapping[str, Datapoint], source: Permissions) -> None:
        """Every accepted update and who provided it, so the check can judge how signals move
        (and believe only the sources it trusts)."""
        ...


class Broker:
    """Signals of one vehicle, validated against a VSS catalog."""

    def __init__(
        self,
        catalog: VssCatalog,
        *,
        clock: Callable[[], float] = time.time,
        stale_after: float | None = None,
        guard: ActuationCheck | None = None,
        max_future_s: float = 1.0,
        max_subscriptions: int = 1000,
        max_subscriptions_per_client: int = 100,
    ) -> None:
        """``max_subscriptions`` (all clients) and ``max_subscriptions_per_client`` (per token
        subject) bound what subscribers can make the broker hold and fan out to: past them a
        subscription is refused (RESOURCE_EXHAUSTED), so one client cannot starve the others."""
        self.catalog = catalog
        self._max_subscriptions = max_subscriptions
        self._max_per_client = max_subscriptions_per_client
        self._subscriptions_by_client: Counter[str] = Counter()
        self._max_future_s = max_future_s  # a provider's timestamp may run ahead of the broker's clock this much
        self._guard = guard
        self._clock = clock
        self._stale_after = stale_after
        self._current: dict[str, Datapoint] = {}
        self._target: dict[str, Datapoint] = {}
        self._subscribers: dict[str, list[Subscription]] = {}
        self._target_subscribers: dict[str, list[Subscription]] = {}
        self._claims: dict[str, Provider] = {}
        self._providers: set[Provider] = set()
        self._disconnected: set[str] = set()
        self._published = 0
        self._rejected = 0
        self._dropped_by_closed = 0
        self._listeners: list[Callable[[Mapping[str, Datapoint]], None]] = []
        self.changed = Notifier()  # after every update, claim, release and unsubscribe: for whoever awaits a state
        now = clock()
        for leaf in catalog:
            if leaf.default is not None:
                self._current[leaf.path] = Datapoint(leaf.default, now)

    @property
    def guard(self) -> ActuationCheck | None:
        """The safety guard every actuation passes (None: actuations are forwarded unchecked)."""
        return self._guard

    # ------------------------------------------------------------------------------ lookups

    def leaf(self, path: str) -> VssLeaf:
        if not path:
            raise InvalidArgument("empty path")
        if len(path) > MAX_PATH_LENGTH:
            raise InvalidArgument(f"path longer than {MAX_PATH_LENGTH} characters ({len(path)})")
        leaf = self.catalog.get(path)
        if leaf is None:
            raise NotFound(f"unknown VSS path {path!r}")
        return leaf

    def leaf_by_id(self, leaf_id: int) -> VssLeaf:
        try:
            return self.catalog.leaf_by_id(leaf_id)
        except KeyError:
            raise NotFound(f"unknown signal id {leaf_id}") from None

    def metadata(self, pattern: str, permissions: Permissions) -> list[VssLeaf]:
        """Leaves matching a path, branch or wildcard pattern that the caller may read."""
        if not pattern or len(pattern) > MAX_PATH_LENGTH:
            raise InvalidArgument(f"a metadata root must be 1..{MAX_PATH_LENGTH} characters")
        leaves = self.catalog.matching(pattern)
        if not leaves:
            raise NotFound(f"nothing in the catalog matches {pattern!r}")
        readable = [leaf for leaf in leaves if permissions.allows(Action.READ, leaf.path)]
        if not readable:
            permissions.require(Action.READ, leaves[0].path)
        return readable

    # ---------------------------------------------------------------------------------- get

    def get(self, path: str, permissions: Permissions) -> Datapoint | None:
        self.leaf(path)
        permissions.require(Action.READ, path)
        return self._current.get(path)

    def get_target(self, path: str, permissions: Permissions) -> Datapoint | None:
        leaf = self.leaf(path)
        permissions.require(Action.READ, path)
        if leaf.entry_type is not EntryType.ACTUATOR:
            raise InvalidArgument(f"{path} is a {leaf.entry_type}, not an actuator: it has no target value")
        return self._target.get(path)

    def is_stale(self, path: str) -> bool:
        """Its provider disconnected, or (with ``stale_after``) it was not updated for that long."""
        if path in self._disconnected:
            return True
        point = self._current.get(path)
        if self._stale_after is None or point is None or self.leaf(path).entry_type is EntryType.ATTRIBUTE:
            return False
        return self._clock() - point.timestamp > self._stale_after

    # ------------------------------------------------------------------------------ publish

    def _prepare(self, path: str, value: Any, permissions: Permissions, action: Action) -> Any:
        """The validated value, or the error for this path (runs once per published value)."""
        check = self.catalog.checker(path)
        if check is None:
            self.leaf(path)  # raises the right error for an empty, oversized or unknown path
        if not permissions.allows(action, path):
            permissions.require(action, path)
        try:
            return check(value)  # type: ignore[misc]  # leaf() raised if check is None
        except VssValueError as exc:
            raise InvalidArgument(str(exc)) from None

    def publish(
        self,
        values: Mapping[str, Any],
        permissions: Permissions,
        *,
        timestamp: float | None = None,
        provider: Provider | None = None,
    ) -> None:
        """Set current values, all or nothing: one bad path or value and nothing changes."""
        try:
            self._check_timestamp(timestamp)
            checked = {
                path: self._prepare(path, value, permissions, Action.PROVIDE_DATA)
                for path, value in values.items()
            }
        except BrokerError:
            self._rejected += 1
            raise
        self._apply(checked, timestamp, provider, permissions)

    def publish_each(
        self,
        values: Mapping[str, Any],
        permissions: Permissions,
        *,
        timestamp: float | None = None,
        provider: Provider | None = None,
    ) -> dict[str, BrokerError]:
        """Set every valid value; return the refused ones (the provider stream's permissive mode)."""
        checked: dict[str, Any] = {}
        errors: dict[str, BrokerError] = {}
        try:
            self._check_timestamp(timestamp)
        except BrokerError as exc:
            self._rejected += len(values)
            return dict.fromkeys(values, exc)
        for path, value in values.items():
            try:
                checked[path] = self._prepare(path, value, permissions, Action.PROVIDE_DATA)
            except BrokerError as exc:
                errors[path] = exc
        self._rejected += len(errors)
        self._apply(checked, timestamp, provider, permissions)
        return errors

    def _check_timestamp(self, timestamp: float | None) -> None:
        """A value stamped in the future would look fresh to every age check for as long as it
        says: refused beyond ``max_future_s`` of clock skew."""
        if timestamp is not None and timestamp > self._clock() + self._max_future_s:
            ahead = timestamp - self._clock()
            raise InvalidArgument(
                f"timestamp {timestamp:.3f} is {ahead:.1f} s ahead of the broker's clock (limit {self._max_future_s:g} s)"
            )

    def _apply(
        self, checked: Mapping[str, Any], timestamp: float | None, provider: Provider | None, source: Permissions
    ) -> None:
        if not checked:
            return
        when = self._clock() if timestamp is None else timestamp
        points = {path: Datapoint(value, when) for path, value in checked.items()}
        self._current.update(points)
        self._published += len(points)
        if self._disconnected:
            self._disconnected.difference_update(points)
        if provider is not None:
            provider.published.update(points)
        self._notify(self._subscribers, points)
        if self._guard is not None:
            self._guard.observe(points, source)
        for listener in self._listeners:
            listener(points)
        self.changed.notify()

    @staticmethod
    def _notify(subscribers: Mapping[str, list[Subscription]], points: Mapping[str, Datapoint]) -> None:
        batches: dict[Subscription, dict[str, Datapoint | None]] = {}
        for path, point in points.items():
            for subscription in subscribers.get(path, ()):
                batch = batches.get(subscription)
                if batch is None:
                    batches[subscription] = {path: point}
                else:
                    batch[path] = point
        for subscription, batch in batches.items():
            subscription.push(batch)

    def add_listener(self, listener: Callable[[Mapping[str, Datapoint]], None]) -> None:
        """Call ``listener`` with every applied batch (the state file uses this)."""
        self._listeners.append(listener)

    def restore(self, values: Mapping[str, Datapoint]) -> None:
        """Load saved values without notifying anyone (start-up only)."""
        self._current.update(values)

    def snapshot(self) -> dict[str, Datapoint]:
        return dict(self._current)

    # ---------------------------------------------------------------------------- subscribe

    def subscribe(
        self,
        paths: Iterable[str],
        permissions: Permissions,
        buffer_size: int = 0,
        *,
        ignore_unknown: bool = False,
        targets: bool = False,
    ) -> Subscription:
        """Subscribe to current values (or, with ``targets``, actuator target values).

        With ``ignore_unknown`` the unknown paths are listed in ``unknown_paths`` instead of
        failing the whole subscription; access is still checked on every known path.
        """
        if buffer_size < 0 or buffer_size > MAX_BUFFER_SIZE:
            raise InvalidArgument(f"buffer_size must be 0..{MAX_BUFFER_SIZE}, got {buffer_size}")
        known: list[str] = []
        unknown: list[str] = []
        for path in dict.fromkeys(paths):
            try:
                leaf = self.leaf(path)
            except NotFound:
                if not ignore_unknown:
                    raise
                unknown.append(path)
                continue
            permissions.require(Action.READ, path)
            if targets and leaf.entry_type is not EntryType.ACTUATOR:
                raise InvalidArgument(
                    f"{path} is a {leaf.entry_type}, not an actuator: it has no target value"
                )
            known.append(path)
        if not known and not unknown:
            raise InvalidArgument("subscribe needs at least one path")
        client = permissions.subject or "in-process"
        held = self._subscriptions_by_client
        if held[client] >= self._max_per_client:
            raise ResourceExhausted(f"{client} holds {held[client]} subscriptions, the most one client may")
        if held.total() >= self._max_subscriptions:
            raise ResourceExhausted(f"the broker holds {held.total()} subscriptions, the most it takes")
        held[client] += 1
        registry = self._target_subscribers if targets else self._subscribers
        subscription = Subscription(
            tuple(known), buffer_size or DEFAULT_BUFFER_SIZE, lambda s: self._unsubscribe(s, registry, client)
        )
        subscription.unknown_paths = tuple(unknown)
        for path in known:
            registry.setdefault(path, []).append(subscription)
        source = self._target if targets else self._current
        subscription.push({path: source.get(path) for path in known})
        self.changed.notify()  # a subscriber arrived (statistics changed)
        return subscription

    def _unsubscribe(self, subscription: Subscription, registry: dict[str, list[Subscription]], client: str) -> None:
        self._subscriptions_by_client[client] -= 1
        self._dropped_by_closed += subscription.dropped
        for path in subscription.paths:
            listeners = registry.get(path)
            if listeners and subscription in listeners:
                listeners.remove(subscription)
                if not listeners:
                    del registry[path]
        self.changed.notify()  # a place is free again

    # ----------------------------------------------------------------------------- providers

    def register_provider(self, permissions: Permissions, name: str = "") -> Provider:
        provider = Provider(self, permissions, name or f"provider-{len(self._providers) + 1}")
        self._providers.add(provider)
        return provider

    def _claim(self, provider: Provider, paths: list[str]) -> None:
        if provider.closed:
            raise Unavailable(f"provider {provider.name} is closed")
        for path in paths:
            leaf = self.leaf(path)
            provider.permissions.require(Action.PROVIDE_ACTUATION, path)
            if leaf.entry_type is not EntryType.ACTUATOR:
                raise InvalidArgument(f"{path} is a {leaf.entry_type}, not an actuator: it cannot be claimed")
            owner = self._claims.get(path)
            if owner is not None and owner is not provider:
                raise AlreadyExists(f"{path} is already provided by {owner.name}")
        for path in paths:
            self._claims[path] = provider
            provider.claimed.add(path)
        self.changed.notify()

    def _release(self, provider: Provider) -> None:
        for path in provider.claimed:
            if self._claims.get(path) is provider:
                del self._claims[path]
        provider.claimed.clear()
        self._disconnected.update(
            p for p in provider.published if self.catalog.leaf(p).entry_type is not EntryType.ATTRIBUTE
        )
        self._providers.discard(provider)
        self.changed.notify()

    # ------------------------------------------------------------------------------ actuate

    def actuate(self, values: Mapping[str, Any], permissions: Permissions) -> None:
        """Forward target values to the providers that claimed them; all or nothing.

        Every path must be an actuator, allowed for ``actuate``, valid, passed by the safety guard
        (if the broker has one), and claimed by a connected provider (``Unavailable`` otherwise)
        before any request is sent.
        """
        if not values:
            raise InvalidArgument("actuate needs at least one actuator")
        self._forward(
            {path: self._actuation_value(path, value, permissions) for path, value in values.items()}
        )

    def _actuation_value(self, path: str, value: Any, permissions: Permissions) -> Any:
        leaf = self.leaf(path)
        if leaf.entry_type is not EntryType.ACTUATOR:
            raise InvalidArgument(f"{path} is a {leaf.entry_type}, not an actuator")
        checked = self._prepare(path, value, permissions, Action.ACTUATE)
        if self._guard is not None:
            checked = self._guard.check(path, checked, permissions.subject, self._current)
        return checked

    def _forward(self, checked: Mapping[str, Any]) -> None:
        plan: dict[Provider, dict[str, Any]] = {}
        for path, value in checked.items():
            provider = self._claims.get(path)
            if provider is None:
                raise Unavailable(f"no provider is connected for {path}")
            plan.setdefault(provider, {})[path] = value
        self._record_targets(checked)
        for provider, request in plan.items():
            provider.deliver(request)

    def set_target(self, values: Mapping[str, Any], permissions: Permissions) -> None:
        """v1 ``Set`` of ``actuator_target``: forwarded to a v2 provider if one claimed the actuator,
        else stored for v1-style providers that subscribe to target values."""
        checked = {path: self._actuation_value(path, value, permissions) for path, value in values.items()}
        claimed = {path: v for path, v in checked.items() if path in self._claims}
        if claimed:
            self._forward(claimed)
        self._record_targets({path: v for path, v in checked.items() if path not in claimed})

    def _record_targets(self, values: Mapping[str, Any]) -> None:
        if not values:
            return
        now = self._clock()
        points = {path: Datapoint(value, now) for path, value in values.items()}
        self._target.update(points)
        self._notify(self._target_subscribers, points)
        self.changed.notify()

    # --------------------------------------------------------------------------- statistics

    def statistics(self) -> BrokerStatistics:
        live = {s for subs in (*self._subscribers.values(), *self._target_subscribers.values()) for s in subs}
        return BrokerStatistics(
            signals=len(self.catalog),
            signals_with_value=len(self._current),
            subscriptions=len(live),
            dropped_updates=self._dropped_by_closed + sum(s.dropped for s in live),
            providers=len(self._providers),
            claimed_actuators=len(self._claims),
            published_values=self._published,
            rejected_values=self._rejected,
        )
