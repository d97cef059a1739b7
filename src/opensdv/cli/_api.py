"""A small client of the fleet API for the CLI: an operator's token, JSON requests, clear errors.

The operator's secret comes from ``OPENSDV_API_SECRET`` only (a flag would show in ``ps`` and the
shell's history); an ``https://`` API is checked against the system's CAs or ``--ca-file``.
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

from opensdv.errors import OpenSDVError

__all__ = ["ApiClient", "ApiError"]


class ApiError(OpenSDVError):
    """The API refused (its status and reason) or could not be reached."""


@dataclass
class ApiClient:
    url: str
    operator: str
    ca_file: Path | None = None
    timeout_s: float = 60.0
    _token: str | None = None

    def _context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https://"):
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> bytes:
        request = Request(self.url.rstrip("/") + path, data=body, method=method, headers=headers)
        try:
            with urlopen(request, timeout=self.timeout_s, context=self._context()) as response:
                return bytes(response.read())
        except HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("detail", exc.reason)
            except ValueError:
                detail = exc.reason
            raise ApiError(f"{method} {path}: {exc.code} {detail}") from None
        except (URLError, OSError) as exc:
            raise ApiError(f"cannot reach the fleet API at {self.url}: {getattr(exc, 'reason', exc)}") from None

    def token(self) -> str:
        if self._token is None:
            secret = os.environ.get("OPENSDV_API_SECRET")
            if not secret:
                raise ApiError(f"set OPENSDV_API_SECRET to operator {self.operator}'s secret")
            form = urlencode({"grant_type": "password", "username": self.operator, "password": secret}).encode()
            reply = self._send("POST", "/api/v1/token", form, {"Content-Type": "application/x-www-form-urlencoded"})
            self._token = str(json.loads(reply)["access_token"])
        return self._token

    def raw(self, method: str, path: str, document: Any = None) -> bytes:
        headers = {"Authorization": f"Bearer {self.token()}"}
        body = None
        if document is not None:
            body, headers["Content-Type"] = json.dumps(document).encode(), "application/json"
        return self._send(method, path, body, headers)

    def json(self, method: str, path: str, document: Any = None) -> Any:
        return json.loads(self.raw(method, path, document) or b"null")


def segment(value: str) -> str:
    """A path segment, quoted (an id is never able to change the path)."""
    return quote(value, safe="")
