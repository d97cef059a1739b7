"""How a vehicle reaches the OTA back end: one small interface, HTTP behind it.

``get`` enforces the two limits Uptane's endless-data and slow-retrieval threats call for: never
read more than the caller's ``max_length``, and give up when a file arrives slower than
``min_bytes_per_s`` after a grace period. Tests put an in-memory transport (or an attacker) in
front of the real repositories through the same interface.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Protocol

import urllib3

from opensdv.vehicle.ota.errors import DownloadError

__all__ = ["HttpTransport", "LocalTransport", "NotFoundError", "RecordingTransport", "Transport"]


class NotFoundError(DownloadError):
    """The server has no such file (how the end of a root chain or a missing delta shows)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="not-found")


class Transport(Protocol):
    def get(self, path: str, max_length: int) -> bytes:
        """The file at ``path`` (relative to the back end), at most ``max_length`` bytes."""
        ...

    def post(self, path: str, data: bytes) -> bytes:
        """Send ``data`` (a manifest) and return the reply."""
        ...


class HttpTransport:
    """HTTP(S) to the back end; ``tls`` (the car's ``IdentityFiles.client_context()``) presents the
    car's fleet certificate, which the back end requires for everything it serves."""

    def __init__(
        self,
        base_url: str,
        connect_timeout_s: float = 5.0,
        *,
        tls: ssl.SSLContext | None = None,
        grace_s: float = 5.0,
        min_bytes_per_s: float = 8192.0,
        chunk: int = 65536,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.grace_s = grace_s
        self.min_bytes_per_s = min_bytes_per_s
        self.chunk = chunk
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=grace_s), retries=False, ssl_context=tls
        )

    def get(self, path: str, max_length: int) -> bytes:
        url = f"{self.base_url}/{path}"
        try:
            response = self._pool.request("GET", url, preload_content=False)
        except urllib3.exceptions.HTTPError as exc:
            raise DownloadError(f"GET {url}: {exc}") from None
        try:
            if response.status == 404:
                raise NotFoundError(f"GET {url}: not found")
            if response.status != 200:
                raise DownloadError(f"GET {url}: HTTP {response.status}")
            data = self._read_limited(response, url, max_length)
        except BaseException:
            response.close()  # a half-read connection cannot go back to the pool
            raise
        response.release_conn()
        return data

    def close(self) -> None:
        self._pool.clear()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _read_limited(self, response: urllib3.BaseHTTPResponse, url: str, max_length: int) -> bytes:
        started = time.monotonic()
        parts: list[bytes] = []
        received = 0
        try:
            while part := response.read1(self.chunk):  # whatever has arrived, so the clock is checked
                received += len(part)
                if received > max_length:
                    raise DownloadError(
                        f"GET {url}: more than {max_length} bytes (endless data)", "endless-data"
                    )
                parts.append(part)
                elapsed = time.monotonic() - started
                if elapsed > self.grace_s and received / elapsed < self.min_bytes_per_s:
                    raise DownloadError(
                        f"GET {url}: {received / elapsed:.0f} B/s is below {self.min_bytes_per_s:.0f} B/s (slow retrieval)",
                        "slow-retrieval",
                    )
        except urllib3.exceptions.ReadTimeoutError:
            raise DownloadError(
                f"GET {url}: no data for {self.grace_s} s (slow retrieval)", "slow-retrieval"
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise DownloadError(f"GET {url}: {exc}") from None
        return b"".join(parts)

    def post(self, path: str, data: bytes) -> bytes:
        url = f"{self.base_url}/{path}"
        try:
            response = self._pool.request(
                "POST", url, body=data, headers={"Content-Type": "application/json"}
            )
        except urllib3.exceptions.HTTPError as exc:
            raise DownloadError(f"POST {url}: {exc}") from None
        if response.status >= 400:
            raise DownloadError(
                f"POST {url}: HTTP {response.status}: {response.data[:300].decode(errors='replace')}"
            )
        return bytes(response.data)


class LocalTransport:
    """A back end in the same process (the demo, tests): functions instead of HTTP, same limits."""

    def __init__(self, read: Callable[[str], bytes | None], post: Callable[[str, bytes], bytes]) -> None:
        self._read = read
        self._post = post

    def get(self, path: str, max_length: int) -> bytes:
        data = self._read(path)
        if data is None:
            raise NotFoundError(f"{path}: not found")
        if len(data) > max_length:
            raise DownloadError(f"{path}: more than {max_length} bytes (endless data)", "endless-data")
        return data

    def post(self, path: str, data: bytes) -> bytes:
        return self._post(path, data)


class RecordingTransport:
    """Passes requests through and keeps what it fetched: the metadata bundle the primary hands to
    secondaries that verify fully (they check the very files the primary checked)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.files: dict[str, bytes] = {}

    def get(self, path: str, max_length: int) -> bytes:
        data = self.inner.get(path, max_length)
        self.files[path] = data
        return data

    def post(self, path: str, data: bytes) -> bytes:
        return self.inner.post(path, data)
