"""When a test runs far too long, print every asyncio task's stack before faulthandler's thread dump.

faulthandler shows threads only: a test whose event loop waits forever on a future shows an idle
``select`` and nothing of the coroutine that waits. This shows which ``await`` it is."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager

import pytest

REPORT_AFTER_S = 200.0  # before pyproject's faulthandler_timeout (240 s), which then dumps the threads


def _print_tasks(loop: asyncio.AbstractEventLoop, uncaptured: Callable[[], AbstractContextManager[None]]) -> None:
    """Runs on the loop's own thread, with pytest's capture suspended (as ``capsys.disabled()``)."""
    with uncaptured():
        tasks = asyncio.all_tasks(loop)
        print(f"\n--- {len(tasks)} asyncio tasks of a test running over {REPORT_AFTER_S:g} s ---",
              file=sys.stderr)
        for task in tasks:
            try:
                task.print_stack(limit=12, file=sys.stderr)
            except Exception as exc:  # one odd task must not hide the others
                print(f"{task!r}: its stack cannot be printed ({exc!r})", file=sys.stderr)
            sys.stderr.flush()


def _report_running_loops(uncaptured: Callable[[], AbstractContextManager[None]]) -> None:
    for candidate in gc.get_objects():
        if isinstance(candidate, asyncio.AbstractEventLoop) and candidate.is_running():
            candidate.call_soon_threadsafe(_print_tasks, candidate, uncaptured)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    capture = item.config.pluginmanager.getplugin("capturemanager")
    timer = threading.Timer(REPORT_AFTER_S, _report_running_loops, args=(capture.global_and_fixture_disabled,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
