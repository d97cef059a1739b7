"""Grid signals over OpenADR 2.0b: the managed site as a VEN of its utility's VTN (``openleadr``).

What the site does with each event's signals (every interval its own window):

| signal | the site |
| --- | --- |
| ``LOAD_DISPATCH`` / ``setpoint`` (kW) | draws at most that |
| ``LOAD_CONTROL`` / ``x-loadControlCapacity`` (0..1) | draws at most that share of its cap |
| ``SIMPLE`` / ``level`` (0..3) | draws at most ``simple_levels[level]`` of its cap (3: shed) |
| ``ELECTRICITY_PRICE`` / ``price`` (per kWh) | plans with that energy price |

An event is opted in once its signals are in the plan; a modified event replaces its signals, a
cancelled one removes them. Messages are signed with the VEN's key and the VTN's signatures are
checked against its certificate's fingerprint; the link is HTTPS.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opensdv.cloud.energy.errors import EnergyError

if TYPE_CHECKING:
    from opensdv.cloud.energy.site_controller import SiteController

__all__ = ["OpenAdrSettings", "SiteVen", "event_signals"]

log = logging.getLogger("opensdv.energy.openadr")


class OpenAdrSettings(BaseModel):
    """The ``openadr`` part of a site file."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    vtn_url: str = Field(pattern=r"^https?://", description="the utility's VTN, e.g. https://vtn.example/OpenADR2/Simple/2.0b")
    ven_name: str = Field(min_length=1)
    ven_id: str | None = None
    cert: Path | None = Field(default=None, description="the VEN's certificate (PEM): signs its messages")
    key: Path | None = Field(default=None, description="its private key (PEM)")
    vtn_fingerprint: str | None = Field(default=None, description="the VTN certificate's fingerprint (openleadr's form)")
    ca_file: Path | None = Field(default=None, description="the CA the VTN's HTTPS certificate is checked against")
    simple_levels: tuple[float, float, float, float] = (1.0, 0.75, 0.5, 0.0)
    allow_unsigned: bool = Field(default=False, description="tests and lab VTNs only: no signatures, plain HTTP")

    @model_validator(mode="after")
    def _secure(self) -> OpenAdrSettings:
        if not all(0 <= share <= 1 for share in self.simple_levels):
            raise ValueError(f"simple_levels are shares of the site cap (0..1), got {list(self.simple_levels)}")
        if self.allow_unsigned:
            return self
        if not self.vtn_url.startswith("https://"):
            raise ValueError("the VTN is reached over https:// (allow_unsigned: true only for a lab VTN)")
        if self.cert is None or self.key is None or self.vtn_fingerprint is None:
            raise ValueError("cert, key and vtn_fingerprint are needed to sign and check messages")
        return self


def _intervals(signal: dict[str, Any]) -> Iterator[tuple[float, float, float]]:
    """(start, end, payload) of each interval, in epoch seconds."""
    for interval in signal.get("intervals", []):
        start: datetime = interval["dtstart"]
        duration: timedelta = interval["duration"]
        payload = float(interval["signal_payload"])
        if not math.isfinite(payload):
            raise EnergyError(f"OpenADR signal {signal.get('signal_name')}: payload {payload} is not a number")
        yield start.timestamp(), (start + duration).timestamp(), payload


def event_signals(event: dict[str, Any], site_cap_kw: float,
                  simple_levels: tuple[float, ...] = (1.0, 0.75, 0.5, 0.0)) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:  # fmt: skip
    """An OpenADR event as (caps, prices): lists of (start, end, kW or price per kWh)."""
    caps, prices = [], []
    for signal in event.get("event_signals", []):
        name, kind = signal.get("signal_name"), signal.get("signal_type")
        for start, end, value in _intervals(signal):
            if name == "LOAD_DISPATCH" and kind == "setpoint":
                caps.append((start, end, max(value, 0.0)))
            elif name == "LOAD_CONTROL" and kind == "x-loadControlCapacity":
                caps.append((start, end, min(max(value, 0.0), 1.0) * site_cap_kw))
            elif name == "SIMPLE":
                level = min(max(round(value), 0), len(simple_levels) - 1)
                caps.append((start, end, simple_levels[level] * site_cap_kw))
            elif name == "ELECTRICITY_PRICE" and kind == "price":
                prices.append((start, end, value))
            else:
                raise EnergyError(f"OpenADR signal {name}/{kind}: the site does not act on it")
    return caps, prices


class SiteVen:
    """The site's VEN: polls the VTN, puts each event's signals into the controller's plan."""

    def __init__(self, settings: OpenAdrSettings, controller: SiteController) -> None:
        self.settings, self.controller = settings, controller
        self.events: dict[str, str] = {}  # event id -> optIn / optOut

    def _client(self) -> Any:
        from openleadr import OpenADRClient

        s = self.settings
        client = OpenADRClient(
            ven_name=s.ven_name, vtn_url=s.vtn_url, ven_id=s.ven_id,
            cert=str(s.cert) if s.cert else None, key=str(s.key) if s.key else None,
            vtn_fingerprint=s.vtn_fingerprint, ca_file=str(s.ca_file) if s.ca_file else None,
            disable_signature=s.allow_unsigned, show_fingerprint=False,
        )  # fmt: skip
        client.add_handler("on_event", self.on_event)
        client.add_handler("on_update_event", self.on_event)
        return client

    async def on_event(self, event: dict[str, Any]) -> str:
        """Take a new, modified or cancelled event into the plan; opt in if the site can act on it."""
        event_id = event["event_descriptor"]["event_id"]
        source = f"openadr {event_id}"
        self.controller.remove_signals(source)
        if event["event_descriptor"].get("event_status") == "cancelled":
            log.info("OpenADR event %s cancelled", event_id)
            self.events[event_id] = "optIn"
            return "optIn"
        try:
            caps, prices = event_signals(event, self.controller.cap_kw, self.settings.simple_levels)
        except EnergyError as error:
            log.warning("%s; opting out of event %s", error, event_id)
            self.events[event_id] = "optOut"
            return "optOut"
        self.controller.add_grid_event(source, caps, prices)
        log.info("OpenADR event %s: %d cap and %d price intervals in the plan", event_id, len(caps), len(prices))
        self.events[event_id] = "optIn"
        return "optIn"

    async def run(self) -> Any:
        """Start polling; returns the openleadr client (``await client.stop()`` ends it)."""
        client = self._client()
        await client.run()
        return client
