"""Straight-line decoders generated per CAN message, for the feeder's hot path.

A generic loop over a message's mapped signals spends most of its time on the loop itself. Like
cantools' compiled bit layouts, each message gets one small Python function with its shifts, masks,
scales, ranges and transforms inlined as constants. It returns the VSS values of a well-formed frame,
or ``None`` whenever anything is off (range, value table, VSS rule): the caller then runs the generic
decoder, which says exactly what was wrong. Both paths are tested to agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opensdv.model.vss import VssValueError
from opensdv.vehicle.can._layout import Target

__all__ = ["generate_decoder"]


def generate_decoder(targets: list[Target], length: int) -> Callable[[bytes], dict[str, Any] | None]:
    """A decoder generated and compiled for one message layout: no per-signal interpretation per frame."""
    lines = ["def decode(data):", f"    if len(data) != {length}:", "        return None"]
    if any(e.little for t in targets for e in t.extracts):
        lines.append("    le = int.from_bytes(data, 'little')")
    if any(not e.little for t in targets for e in t.extracts):
        lines.append("    be = int.from_bytes(data, 'big')")
    lines += ["    out = {}", "    try:"]
    namespace: dict[str, Any] = {"VssValueError": VssValueError, "MISSING": object()}
    extracted: dict[tuple[bool, int, int, int, float, float], str] = {}  # one extraction per DBC signal
    for i, target in enumerate(targets):
        names = []
        for e in target.extracts:
            key = (e.little, e.shift, e.mask, e.sign_bit, e.scale, e.offset)
            if key in extracted:
                names.append(extracted[key])
                continue
            var = extracted[key] = f"p{len(extracted)}"
            names.append(var)
            lines.append(f"        r = ({'le' if e.little else 'be'} >> {e.shift}) & {e.mask}")
            if e.sign_bit:
                lines.append(f"        if r & {e.sign_bit}:")
                lines.append(f"            r -= {e.sign_bit << 1}")
            lines.append(f"        {var} = r * {e.scale!r} + {e.offset!r}")
            if e.low is not None:
                lines.append(f"        if {var} < {e.low!r}:")
                lines.append("            return None")
            if e.high is not None:
                lines.append(f"        if {var} > {e.high!r}:")
                lines.append("            return None")
        if target.combine is None:
            combined = names[0]
        elif target.combine == "mean":
            combined = f"(({' + '.join(names)}) / {len(names)})"
        else:
            combined = f"{target.combine}({', '.join(names)})"
        body: list[str] = []
        if target.unavailable:  # a DBC value that means "no value": this signal is left out
            namespace[f"U{i}"] = target.unavailable
            lines.append(f"        c = {combined}")
            lines.append(f"        if c not in U{i}:")
            combined, indent = "c", "    "
        else:
            indent = ""
        if target.values is not None:  # value tables were validated against the leaf when compiled
            namespace[f"V{i}"] = target.values
            body.append(f"        x = V{i}.get({combined}, MISSING)")
            body.append("        if x is MISSING:")
            body.append("            return None")
        elif target.boolean:
            body.append(f"        x = {combined} != 0")
        else:
            expression = combined
            if target.factor != 1.0 or target.offset != 0.0:
                expression = f"{combined} * {target.factor!r} + {target.offset!r}"
            body.append(
                f"        x = round({expression})" if target.integer else f"        x = {expression}"
            )
            if target.bounds is not None:
                low, high = target.bounds
                body.append(f"        if not ({low!r} <= x <= {high!r}):")
                body.append("            return None")
            else:
                namespace[f"C{i}"] = target.check
                body.append(f"        x = C{i}(x)")
        body.append(f"        out[{target.path!r}] = x")
        lines += [indent + line for line in body]
    lines += ["    except VssValueError:", "        return None", "    return out"]
    exec(compile("\n".join(lines), f"<can decoder {len(targets)} signals>", "exec"), namespace)
    return namespace["decode"]  # type: ignore[no-any-return]
