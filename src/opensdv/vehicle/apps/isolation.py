"""What an app process gets of the platform: as little as it needs to run.

- **Environment**: only what any Python program needs (``PATH``, locale, time zone, ``PYTHONPATH``)
  and its own ``HOME`` and ``TMPDIR``; none of the platform's ``OPENSDV_*`` settings (a CSMS
  password or a database URL would otherwise reach every app). Its token comes on standard input,
  read once, never in the environment.
- **Directories**: a private home (its working directory) and temporary directory per app, mode
  0700, so apps cannot read each other's files.
- **User**: when the platform runs as root, each app runs as a user of its own (a uid from
  ``APP_UIDS``, no login) that cannot read the platform's keys (mode 0600) or another app's
  process. That needs the interpreter, the installed packages and the app's code readable by other
  users; where they are not (a Python under ``/root``, say), the app runs as the platform's user and
  its status says why.
- **Process**: the host marks itself not dumpable, so other processes of the same user cannot read
  its memory or its ``/proc`` files (the token).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import opensdv

__all__ = ["APP_UIDS", "PASSED_ENVIRONMENT", "AppSandbox", "forbid_inspection", "isolation_blocker"]

APP_UIDS = range(61000, 65000)  # below nobody (65534), above what distributions hand out to people
PASSED_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH")


def isolation_blocker(paths: list[Path]) -> str | None:
    """Why a user other than the owner could not run from ``paths`` (every directory above each
    must be enterable by others and each path readable), or ``None`` if it could."""
    for path in paths:
        resolved = path.resolve()
        for directory in reversed(resolved.parents):
            if not directory.stat().st_mode & stat.S_IXOTH:
                return f"{directory} is not enterable by other users"
        mode = resolved.stat().st_mode
        if not mode & stat.S_IROTH or (resolved.is_dir() and not mode & stat.S_IXOTH):
            return f"{resolved} is not readable by other users"
    return None


@dataclass
class AppSandbox:
    """Each app's private directories under ``root`` and, when ``separate_users``, its own uid."""

    root: Path
    separate_users: bool

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)  # apps may pass through to their own directory, not list the others
        self._uids: dict[str, int] = {}

    def uid(self, name: str) -> int:
        """A stable uid for the app (the same across restarts of the platform, distinct per app)."""
        if name not in self._uids:
            start = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % len(APP_UIDS)
            taken = set(self._uids.values())
            offset = next(o for o in range(len(APP_UIDS)) if APP_UIDS[(start + o) % len(APP_UIDS)] not in taken)
            self._uids[name] = APP_UIDS[(start + offset) % len(APP_UIDS)]
        return self._uids[name]

    def prepare(self, name: str, code: Path) -> tuple[dict[str, object], str]:
        """The process options for the app (environment, working directory, user) and a note on
        how it is isolated (which the app's status shows)."""
        home, tmp = self.root / name / "home", self.root / name / "tmp"
        for directory in (self.root / name, home, tmp):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700 if directory != self.root / name else 0o711)
        environment = {key: os.environ[key] for key in PASSED_ENVIRONMENT if key in os.environ}
        environment |= {"HOME": str(home), "TMPDIR": str(tmp)}
        options: dict[str, object] = {"env": environment, "cwd": str(home)}
        if not self.separate_users:
            return options, "private directories"
        needed = [Path(sys.executable), Path(opensdv.__file__).parent, code, home]
        blocker = isolation_blocker(needed)
        if blocker is not None:
            return options, f"private directories; as the platform's user, not its own: {blocker}"
        uid = self.uid(name)
        for directory in (home, tmp):
            os.chown(directory, uid, uid)
        return options | {"user": uid, "group": uid, "extra_groups": []}, f"private directories, uid {uid}"


def forbid_inspection() -> None:
    """Mark this process not dumpable: other processes of its user can no longer read its memory
    or ``/proc`` files (where its token is). Linux only; elsewhere nothing happens."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
