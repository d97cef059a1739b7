"""Plots people would rather see than tables, saved as PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opensdv.physics.ageing import AgeingResult
from opensdv.physics.simulate import TwinResult

__all__ = ["plot_ageing", "plot_run"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_run(result: TwinResult, index: int, path: Path) -> Path:
    """Speed, pack power and state of charge of one vehicle over the cycle."""
    plt = _pyplot()
    time = result.cycle.time_s[1:]
    figure, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    axes[0].plot(time, result.traces["speed_mps"][index] * 3.6, color="tab:blue")
    axes[0].set_ylabel("speed [km/h]")
    axes[1].plot(
        time, result.traces["current_a"][index] * result.traces["voltage_v"][index] / 1000, color="tab:red"
    )
    axes[1].axhline(0, color="grey", linewidth=0.5)
    axes[1].set_ylabel("pack power [kW]")
    axes[2].plot(time, result.traces["soc"][index] * 100, color="tab:green")
    axes[2].set_ylabel("state of charge [%]")
    axes[2].set_xlabel("time [s]")
    figure.suptitle(f"{result.names[index]} on {result.cycle.name}: {result.wh_per_km[index]:.0f} Wh/km")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_ageing(result: AgeingResult, title: str, path: Path) -> Path:
    """Capacity and resistance over the years of an ageing run, saved as PNG."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.plot(
        result.months / 12,
        result.state_of_health * 100,
        color="tab:green",
        label="capacity (state of health)",
    )
    axis.set_xlabel("years")
    axis.set_ylabel("state of health [%]")
    second = axis.twinx()
    second.plot(
        result.months / 12,
        result.resistance_factor,
        color="tab:red",
        linestyle="--",
        label="resistance factor",
    )
    second.set_ylabel("resistance x new")
    figure.suptitle(title)
    figure.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
