"""What the long-running programs (``vehicle run``, ``cloud run``) share: logs as readable lines or
one JSON object a line for collectors, and a clean stop on SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from opensdv.errors import OpenSDVError

T = TypeVar("T")

__all__ = ["JsonFormatter", "cancel_and_wait", "configure_logging", "run_until_signalled", "to_thread_to_the_end"]


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Log to stderr as ``text`` or ``json``."""
    if log_format not in ("text", "json"):
        raise OpenSDVError(f"--log-format must be text or json, got {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("amqtt", "transitions", "websockets", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def run_until_signalled(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """``run(stop)``, with ``stop`` set by SIGTERM or SIGINT: the program then stops in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await run(stop)


async def to_thread_to_the_end(work: Callable[[], T]) -> T:
    """``work()`` in a thread; a cancellation waits for it to finish before it takes effect (an OTA
    install under way completes, so the A/B slots stay consistent when the program stops)."""
    running = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        while not running.done():  # a repeated cancellation (see cancel_and_wait) waits too
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(running)
        raise


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]], recancel_s: float = 1.0) -> None:
    """Cancel ``tasks`` and return once every one has ended. A cancellation can be lost: on Python
    3.11 ``asyncio.wait_for`` returns the inner result instead when both arrive in the same loop
    iteration (ocpp's ``ChargePoint.call`` waits so), and the task runs on as if never cancelled; a
    task still running ``recancel_s`` later is cancelled again."""
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=recancel_s)
    await asyncio.gather(*tasks, return_exceptions=True)
