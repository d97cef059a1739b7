"""The long-running programs' logs: one JSON object a line when asked, and a clear refusal of an
unknown format."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading

import pytest

from opensdv.errors import OpenSDVError
from opensdv.programs import configure_logging


def test_json_logs_are_one_object_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    configure_logging("json")
    try:
        logging.getLogger("opensdv.test").info("vehicle %s started", "JN1NSSAN0DD000001")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("opensdv.test").exception("failed")
    finally:
        root.handlers[:], root.level = handlers, level
    lines = capsys.readouterr().err.splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "vehicle JN1NSSAN0DD000001 started" and first["level"] == "info"
    assert first["logger"] == "opensdv.test" and isinstance(first["at"], float)
    assert second["level"] == "error" and "ValueError: boom" in second["exception"]


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(OpenSDVError, match="--log-format must be text or json, got 'xml'"):
        configure_logging("xml")


class _Install:
    """An OTA install in a thread that runs until the test releases it."""

    def __init__(self) -> None:
        self.started, self.release, self.done = threading.Event(), threading.Event(), list[str]()

    def __call__(self) -> None:
        self.started.set()
        self.release.wait(10)
        self.done.append("installed")

    async def running(self) -> asyncio.Task[None]:
        from opensdv.programs import to_thread_to_the_end

        task = asyncio.create_task(to_thread_to_the_end(self))
        await asyncio.to_thread(self.started.wait, 10)
        return task


async def test_work_in_a_thread_finishes_before_a_cancellation_takes_effect() -> None:
    install = _Install()
    task = await install.running()
    done, release = install.done, install.release
    task.cancel()
    await asyncio.wait({task}, timeout=0.2)  # the cancellation is delivered; the install still runs
    assert not task.done() and done == []
    await asyncio.to_thread(release.set)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done == ["installed"]  # the cancellation waited for the install to end


async def test_a_repeated_cancellation_still_waits_for_the_work_in_the_thread() -> None:
    from opensdv.programs import cancel_and_wait

    install = _Install()
    task = await install.running()
    done, release = install.done, install.release
    stopping = asyncio.create_task(cancel_and_wait([task], recancel_s=0.01))
    await asyncio.wait({stopping}, timeout=0.2)  # cancelled some twenty times, the install runs on
    assert not task.done() and done == []
    await asyncio.to_thread(release.set)
    await stopping
    assert task.cancelled() and done == ["installed"]


async def test_a_task_that_lost_its_cancellation_is_stopped_all_the_same() -> None:
    """The race that hung the demo's stop: a reply and the cancellation arrive in the same loop
    iteration; Python 3.11's ``wait_for`` returns the reply and the loop goes on waiting for the
    next one, as if never cancelled."""
    from opensdv.programs import cancel_and_wait

    replies: asyncio.Queue[str] = asyncio.Queue()
    answered: list[str] = []

    async def station() -> None:
        while True:  # each call waits for its reply (as ocpp's ChargePoint.call does)
            answered.append(await asyncio.wait_for(replies.get(), 3600))

    task = asyncio.create_task(station())
    await asyncio.sleep(0)  # the station waits for a reply
    replies.put_nowait("accepted")
    task.cancel()
    await asyncio.wait({task}, timeout=0.05)
    if sys.version_info < (3, 12):  # 3.12's wait_for no longer loses it
        assert not task.done() and answered == ["accepted"]  # the cancellation was lost
    await cancel_and_wait([task], recancel_s=0.05)
    assert task.done()
