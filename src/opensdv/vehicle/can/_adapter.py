"""A mapping compiled against its DBCs and a VSS catalog: frames <-> VSS values, fast.

Decoding extracts only the mapped signals with precomputed shifts and masks (no full-message
decode), then applies unit conversion, the mapping's transform and the VSS rules. Encoding (VSS ->
frame) goes through ``cantools`` so that simulators and actuation produce frames any tool agrees on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import can
from cantools.database.can import Message, Signal
from cantools.database.errors import EncodeError

from opensdv.model.vss import EntryType, VssCatalog, VssLeaf, VssValueError
from opensdv.vehicle.can._checksums import HondaChecksum, brand_protection
from opensdv.vehicle.can._codegen import generate_decoder
from opensdv.vehicle.can._dbc import load_dbc
from opensdv.vehicle.can._e2e import E2EProfile1, e2e_protection
from opensdv.vehicle.can._errors import CanDatabaseError, CanMappingError
from opensdv.vehicle.can._layout import Target, compile_extract
from opensdv.vehicle.can._mapping import ActuatorMap, ResolvedMapping, SignalMap
from opensdv.vehicle.can._units import UnitError, conversion

__all__ = ["Adapter", "CanMappingError", "Decoded", "frame_key"]


@dataclass(slots=True)
class _Decoder:
    message: Message
    length: int
    targets: list[Target]
    little: bool
    big: bool
    fast: Callable[[bytes], dict[str, Any] | None] | None = None


@dataclass(frozen=True, slots=True)
class Decoded:
    values: dict[str, Any]
    dropped: tuple[tuple[str, str, str], ...] = ()  # (path or message, reason category, detail)


EXTENDED = 1 << 31


def frame_key(frame_id: int, is_extended: bool) -> int:
    """One int per (id, format): the key of ``Adapter.fast_decoders``."""
    return frame_id | EXTENDED if is_extended else frame_id


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


_COMBINE: dict[str, Callable[[list[float]], float]] = {"mean": _mean, "min": min, "max": max}
FrameProtection = E2EProfile1 | HondaChecksum  # protect(payload) when sending, check(payload) when receiving


class Adapter:
    """Compile ``mapping`` for ``catalog``; ``CanMappingError`` lists every problem found."""

    def __init__(self, mapping: ResolvedMapping, catalog: VssCatalog) -> None:
        self.mapping = mapping
        self.catalog = catalog
        problems: list[str] = []
        self.messages: dict[str, Message] = {}
        owners: dict[tuple[int, bool], str] = {}
        sources: dict[str, str] = {}
        for source in mapping.dbc:
            try:
                database = load_dbc(source)
            except CanDatabaseError as exc:
                problems.append(str(exc))
                continue
            for message in database.messages:
                key = (message.frame_id, message.is_extended_frame)
                if key in owners and self.messages.get(message.name) is not message:
                    problems.append(
                        f"frame id {message.frame_id:#x} is defined by {owners[key]} and {source}"
                    )
                owners[key] = source
                self.messages[message.name] = message
                sources[message.name] = source
        # by message name: the E2E header of the components DBC, or the brand's own checksum
        self.protections: dict[str, FrameProtection] = {}
        for message in self.messages.values():
            try:
                protection = e2e_protection(message) or brand_protection(sources[message.name], message)
            except (ValueError, KeyError) as exc:
                problems.append(str(exc))
                continue
            if protection is not None:
                self.protections[message.name] = protection
        self.decoders: dict[tuple[int, bool], _Decoder] = {}
        for entry in mapping.signals.values():
            try:
                self._add_signal(entry)
            except (ValueError, UnitError, KeyError) as exc:
                problems.append(f"{entry.vss}: {exc}")
        self.actuators: dict[str, tuple[ActuatorMap, Message, float, float]] = {}
        for actuator in mapping.actuators.values():
            try:
                self._add_actuator(actuator)
            except (ValueError, UnitError, KeyError) as exc:
                problems.append(f"{actuator.vss}: {exc}")
        for check in mapping.cross_checks.values():
            unmapped = [p for p in (check.vss, *check.against) if p not in mapping.signals]
            if unmapped:
                problems.append(f"cross-check of {check.vss}: {', '.join(unmapped)} not mapped to a CAN signal")
        if problems:
            raise CanMappingError(mapping.id, problems)
        self.fast_decoders: dict[int, Callable[[bytes], dict[str, Any] | None]] = {}
        for (frame_id, extended), decoder in self.decoders.items():
            decoder.fast = generate_decoder(decoder.targets, decoder.length)
            self.fast_decoders[frame_key(frame_id, extended)] = decoder.fast
        self._last_data: dict[str, bytes] = {}

    # ------------------------------------------------------------------------------ compile

    def _leaf(self, path: str) -> VssLeaf:
        leaf = self.catalog.get(path)
        if leaf is None:
            raise ValueError(f"not a path in the VSS catalog ({len(self.catalog)} leaves)")
        return leaf

    def _message(self, name: str) -> Message:
        if name not in self.messages:
            raise ValueError(f"message {name!r} is not in {', '.join(self.mapping.dbc)}")
        return self.messages[name]

    def _add_signal(self, entry: SignalMap) -> None:
        leaf = self._leaf(entry.vss)
        message = self._message(entry.message)
        signals = []
        for name in entry.signals:
            try:
                signals.append(message.get_signal_by_name(name))
            except KeyError:
                raise ValueError(f"signal {name!r} is not in message {entry.message}") from None
        if len(signals) > 1 and entry.combine is None:
            raise ValueError("several signals need 'combine' (mean, min or max)")
        source_unit = entry.unit or signals[0].unit
        factor, offset = conversion(source_unit, leaf.unit) if entry.values is None else (1.0, 0.0)
        values: dict[float, Any] | None = None
        if entry.values is not None:
            values = {}
            for key, vss_value in entry.values.items():
                raw = self._raw_key(signals[0], key)
                try:
                    values[raw] = leaf.validate(vss_value)
                except VssValueError as exc:
                    raise ValueError(f"values[{key!r}]: {exc.reason} (got {vss_value!r})") from None
        target = Target(
            path=entry.vss,
            extracts=tuple(compile_extract(s, message.length) for s in signals),
            combine=entry.combine,
            factor=factor * entry.scale,
            offset=offset * entry.scale + entry.offset,
            values=values,
            integer=leaf.datatype.is_integer,
            boolean=leaf.datatype.base == "boolean",
            check=leaf.checker(),
            bounds=leaf.bounds(),
            min_interval_s=entry.min_interval_ms / 1000,
            on_change=entry.on_change,
            unavailable=frozenset(entry.unavailable),
        )
        frame_key = (message.frame_id, message.is_extended_frame)
        decoder = self.decoders.get(frame_key)
        if decoder is None:
            decoder = self.decoders[frame_key] = _Decoder(message, message.length, [], False, False)
        decoder.targets.append(target)
        decoder.little |= any(e.little for e in target.extracts)
        decoder.big |= any(not e.little for e in target.extracts)

    @staticmethod
    def _raw_key(signal: Signal, key: str | int | float | bool) -> float:
        """A ``values`` key is a DBC choice name or a physical value."""
        if isinstance(key, str):
            for raw, choice in (signal.choices or {}).items():
                if str(choice) == key:
                    return float(raw) * signal.scale + signal.offset
            raise ValueError(
                f"{signal.name} has no choice {key!r} (choices: {list((signal.choices or {}).values())})"
            )
        return float(key)

    def _add_actuator(self, actuator: ActuatorMap) -> None:
        leaf = self._leaf(actuator.vss)
        if leaf.entry_type is not EntryType.ACTUATOR:
            raise ValueError(f"is a {leaf.entry_type}, not an actuator")
        message = self._message(actuator.message)
        try:
            signal = message.get_signal_by_name(actuator.signal)
        except KeyError:
            raise ValueError(f"signal {actuator.signal!r} is not in message {actuator.message}") from None
        if actuator.values is not None:
            for vss_value, dbc_value in actuator.values.items():
                try:
                    leaf.validate(vss_value)
                except VssValueError as exc:
                    raise ValueError(f"values[{vss_value!r}]: {exc.reason}") from None
                if isinstance(dbc_value, str):
                    self._raw_key(signal, dbc_value)
        factor, offset = (
            conversion(leaf.unit, actuator.unit or signal.unit) if actuator.values is None else (1.0, 0.0)
        )
        self.actuators[actuator.vss] = (actuator, message, factor, offset)

    # ------------------------------------------------------------------------------- decode

    def decode(self, frame_id: int, is_extended: bool, data: bytes) -> Decoded | None:
        """The mapped VSS values in one frame, or ``None`` if no mapped message has this id."""
        decoder = self.decoders.get((frame_id, is_extended))
        if decoder is None:
            return None
        if decoder.fast is not None:
            values = decoder.fast(data)
            if values is not None:
                return Decoded(values)
        return self._decode_slowly(decoder, data)

    def _decode_slowly(self, decoder: _Decoder, data: bytes) -> Decoded:
        """The generic decoder: also says why a value was dropped."""
        if len(data) != decoder.length:
            return Decoded(
                {},
                (
                    (
                        decoder.message.name,
                        "wrong-length",
                        f"{len(data)} bytes, the DBC says {decoder.length}",
                    ),
                ),
            )
        le = int.from_bytes(data, "little") if decoder.little else 0
        be = int.from_bytes(data, "big") if decoder.big else 0
        values: dict[str, Any] = {}
        dropped: list[tuple[str, str, str]] = []
        for target in decoder.targets:
            physical = []
            bad = None
            for e in target.extracts:
                raw = ((le if e.little else be) >> e.shift) & e.mask
                if e.sign_bit and raw & e.sign_bit:
                    raw -= e.sign_bit << 1
                value = raw * e.scale + e.offset
                if (e.low is not None and value < e.low) or (e.high is not None and value > e.high):
                    bad = f"{e.name}={value:g} outside the DBC range"
                    break
                physical.append(value)
            if bad is not None:
                dropped.append((target.path, "dbc-range", bad))
                continue
            combined = physical[0] if target.combine is None else _COMBINE[target.combine](physical)
            if combined in target.unavailable:
                dropped.append((target.path, "not-available", f"DBC value {combined:g} means no value"))
                continue
            if target.values is not None:
                if combined not in target.values:
                    dropped.append(
                        (target.path, "unmapped-value", f"no VSS value for DBC value {combined:g}")
                    )
                    continue
                result: Any = target.values[combined]
            elif target.boolean:
                result = combined != 0
            else:
                result = combined * target.factor + target.offset
                if target.integer:
                    result = round(result)
            try:
                values[target.path] = target.check(result)
            except VssValueError as exc:
                dropped.append((target.path, "vss-invalid", exc.reason))
        return Decoded(values, tuple(dropped))

    def observe(self, frame_id: int, is_extended: bool, data: bytes) -> None:
        """Remember a frame so that actuation keeps the message's other signals as last seen."""
        decoder = self.decoders.get((frame_id, is_extended))
        if decoder is not None and len(data) == decoder.length:  # a malformed frame is no template
            self._last_data[decoder.message.name] = bytes(data)

    # ------------------------------------------------------------------------------- encode

    def _defaults(self, message: Message) -> dict[str, Any]:
        """The message's other signals as last seen on the bus, each within its DBC range; a signal
        the last frame carried out of range (a corrupt or fuzzed frame) takes its initial value."""
        defaults: dict[str, Any] = {}
        for signal in message.signals:
            low = signal.minimum if signal.minimum is not None else 0
            initial = (
                signal.raw_initial * signal.scale + signal.offset if signal.raw_initial is not None else 0
            )
            defaults[signal.name] = (
                initial if (signal.maximum is None or low <= initial <= signal.maximum) else low
            )
        last = self._last_data.get(message.name)
        if last is not None:
            seen = message.decode(last, decode_choices=False)
            for signal in message.signals:
                value = seen.get(signal.name)  # type: ignore[union-attr]
                if isinstance(value, int | float) and _within(signal, float(value)):
                    defaults[signal.name] = value
        return defaults

    def _frame(self, message: Message, data: dict[str, Any]) -> can.Message:
        try:
            payload = message.encode(data, scaling=True, strict=True)
        except (EncodeError, ValueError, KeyError, OverflowError) as exc:
            raise CanMappingError(self.mapping.id, [f"cannot encode {message.name}: {exc}"]) from None
        protection = self.protections.get(message.name)
        return can.Message(
            arbitration_id=message.frame_id,
            is_extended_id=message.is_extended_frame,
            data=payload if protection is None else protection.protect(payload),
            is_fd=message.length > 8,
        )

    def encode_signals(self, values: Mapping[str, Any]) -> list[can.Message]:
        """Frames carrying these VSS values, as the vehicle's ECUs would send them (simulators, tests)."""
        per_message: dict[str, dict[str, Any]] = {}
        for path, value in values.items():
            entry = self.mapping.signals.get(path)
            if entry is None:
                raise CanMappingError(self.mapping.id, [f"{path} is not mapped to a CAN signal"])
            message = self.messages[entry.message]
            data = per_message.setdefault(message.name, self._defaults(message))
            leaf = self.catalog.leaf(path)
            if value is None and entry.unavailable:  # no value: the DBC's own way of saying so
                physical = entry.unavailable[0]
            else:
                physical = self._to_physical(entry, leaf, value)
            for name in entry.signals:
                data[name] = physical
        return [self._frame(self.messages[name], data) for name, data in per_message.items()]

    def _to_physical(self, entry: SignalMap, leaf: VssLeaf, value: Any) -> Any:
        if entry.values is not None:
            for key, vss_value in entry.values.items():
                if vss_value == value:
                    return key
            raise CanMappingError(self.mapping.id, [f"{entry.vss}: no DBC value for {value!r}"])
        if leaf.datatype.base == "boolean":
            return 1 if value else 0
        factor, offset = conversion(
            entry.unit or self.messages[entry.message].get_signal_by_name(entry.signals[0]).unit, leaf.unit
        )
        return ((value - entry.offset) / entry.scale - offset) / factor

    def encode_actuation(self, values: Mapping[str, Any]) -> list[can.Message]:
        """Frames that carry actuation requests (VSS target values) to the ECUs."""
        per_message: dict[str, dict[str, Any]] = {}
        for path, value in values.items():
            if path not in self.actuators:
                raise CanMappingError(self.mapping.id, [f"{path} is not a mapped actuator"])
            actuator, message, factor, offset = self.actuators[path]
            data = per_message.setdefault(message.name, self._defaults(message))
            if actuator.values is not None:
                data[actuator.signal] = actuator.values[value]
            else:
                data[actuator.signal] = (value * factor + offset) * actuator.scale + actuator.offset
        return [self._frame(self.messages[name], data) for name, data in per_message.items()]

    def throttle(self, path: str) -> tuple[float, bool]:
        """(minimum interval in seconds, publish only on change) for a mapped signal."""
        entry = self.mapping.signals[path]
        return entry.min_interval_ms / 1000, entry.on_change

    @property
    def signal_paths(self) -> list[str]:
        return list(self.mapping.signals)

    @property
    def actuator_paths(self) -> list[str]:
        return list(self.actuators)


def _within(signal: Any, value: float) -> bool:
    return (signal.minimum is None or value >= signal.minimum) and (
        signal.maximum is None or value <= signal.maximum
    )
