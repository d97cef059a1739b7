"""Where a fleet job's pieces run: here, one after another, or on Ray (a local Ray this process
starts, or a cluster at ``--ray-address``). A job is a pure function over a chunk of the fleet,
picklable, that opens what it needs (the OTA directory, the database) by location, so the same
function runs in a Ray worker on another machine as in this process.

Ray is imported only when a ``RayRunner`` is made (the ``scale`` extra installs it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from opensdv.errors import OpenSDVError

__all__ = ["InProcess", "JobError", "JobRunner", "RayRunner", "chunks", "runner_for"]

T = TypeVar("T")
R = TypeVar("R")


class JobError(OpenSDVError):
    """A fleet job could not run where it was asked to (the message says why)."""


class JobRunner(Protocol):
    def map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``function`` over every item (a chunk of the fleet), results in the items' order."""
        ...


class InProcess:
    """Every chunk in this process, in order."""

    workers = 1

    def map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        return [function(item) for item in items]


class RayRunner:
    """Every chunk as a Ray task. ``address``: ``None`` starts a local Ray of ``workers`` CPUs,
    ``auto`` joins the one this machine runs, ``ray://host:10001`` a remote cluster."""

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise JobError("fleet jobs on Ray need the ray package: pip install 'opensdv[scale]'") from None
        self._ray = ray
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            if address is None:
                options["num_cpus"] = workers
            try:
                ray.init(address=address, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise JobError(f"cannot reach Ray at {address}: {exc}") from None
        self.workers = workers or int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]

    def map(self, function: Callable[[T], R], items: Sequence[T]) -> list[R]:
        remote = self._ray.remote(function)
        return list(self._ray.get([remote.remote(item) for item in items]))

    def shutdown(self) -> None:
        self._ray.shutdown()


def runner_for(address: str | None) -> JobRunner:
    """The runner a setting names: none (in-process), ``local``, ``auto`` or a ``ray://`` URL."""
    if address is None:
        return InProcess()
    return RayRunner(None if address == "local" else address)


def chunks(items: Sequence[T], count: int) -> list[list[T]]:
    """``items`` in ``count`` contiguous chunks of nearly equal size (none empty)."""
    count = max(1, min(count, len(items)))
    size, extra = divmod(len(items), count)
    out, start = [], 0
    for n in range(count):
        end = start + size + (1 if n < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return [chunk for chunk in out if chunk]
