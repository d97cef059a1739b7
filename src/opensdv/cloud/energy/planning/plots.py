"""The site's load curve under each schedule, with the site cap and the price, as a PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from opensdv.cloud.energy.planning.schedule import Schedule

__all__ = ["plot_load_curves"]


def plot_load_curves(
    schedules: Sequence[Schedule],
    site_cap_kw: float | NDArray[np.float64],
    path: Path,
    *,
    slot_minutes: float,
    days: float = 2.0,
) -> Path:
    """``site_cap_kw``: one value, or one per slot (a grid operator's cap for a while)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = int(days * 24 * 60 / slot_minutes)
    first = schedules[0]
    busiest = (
        int(np.argmax(np.convolve(first.site_kw, np.ones(shown), mode="valid")))
        if len(first.site_kw) > shown
        else 0
    )
    window = slice(busiest, busiest + shown)
    hours = np.arange(len(first.site_kw))[window] * slot_minutes / 60
    figure, (load, price) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[3, 1])
    for schedule in schedules:
        load.plot(
            hours,
            schedule.site_kw[window],
            label=f"{schedule.name} (peak {schedule.peak_kw:.0f} kW)",
            linewidth=1.2,
        )
    cap = np.broadcast_to(np.asarray(site_cap_kw, dtype=np.float64), first.site_kw.shape)
    load.step(
        hours,
        cap[window],
        where="post",
        color="black",
        linestyle=":",
        label=f"site cap (up to {cap.max():g} kW)",
    )
    load.axhline(0, color="grey", linewidth=0.5)
    load.set_ylabel("site load [kW]")
    load.legend(fontsize=8, loc="upper right")
    price.step(hours, first.tariff.energy_price[: len(first.site_kw)][window], where="post", color="tab:red")
    price.set_ylabel("price /kWh")
    price.set_xlabel("hours since the start of the data")
    figure.suptitle("Charging site load: the busiest two days")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
