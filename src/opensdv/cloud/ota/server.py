"""``opensdv ota serve``: the back end's routes over HTTPS with client certificates.

Metadata and images are plain files, served with ``FileResponse`` (HTTP range requests included,
so a vehicle can resume an interrupted image download); manifests arrive by POST. The adapter only
translates: errors from the back end become 400/404 with their message.

Only the fleet talks to it: every connection presents a certificate of the fleet CA (see
``opensdv.cloud.mtls``). A car's director metadata names its ECUs' serials, hardware and consent
terms, so ``director/<VIN>/...`` is served, and takes manifests, only for the car whose certificate
names that VIN; any other VIN, enrolled or not, gets the same 404, so nothing tells which VINs
exist. The image repository is the same for every car, so any fleet identity may read it. A
revoked identity is refused even while its certificate is still within the loaded CRL's period.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse

from opensdv.cloud.mtls import peer_of
from opensdv.cloud.ota.backend import MAX_MANIFEST_BYTES, OtaBackend
from opensdv.errors import OpenSDVError

__all__ = ["create_app"]


def _no_revocations() -> frozenset[str]:
    return frozenset()


def create_app(backend: OtaBackend, revoked: Callable[[], frozenset[str]] = _no_revocations) -> FastAPI:
    """``revoked``: the identities revoked now (``RevokedSubjects.current``)."""
    app = FastAPI(
        title="OpenSDV OTA (Uptane director + image repository)", version="1",
        docs_url=None, redoc_url=None, openapi_url=None,
    )  # fmt: skip

    def caller(request: Request) -> str:
        peer = peer_of(request)
        if peer is None or peer in revoked():
            raise HTTPException(403, "a fleet identity (client certificate) is required")
        return peer

    def not_found(path: str) -> HTTPException:
        return HTTPException(404, f"no such file: {path}")

    @app.get("/{path:path}", response_model=None)
    def get_file(path: str, request: Request) -> FileResponse:
        peer = caller(request)
        parts = path.split("/")
        if parts[0] == "director" and (len(parts) < 2 or parts[1] != peer):
            raise not_found(path)
        file = backend.file(path)
        if file is None or not file.is_file():
            raise not_found(path)
        media = "application/json" if file.suffix == ".json" else "application/octet-stream"
        return FileResponse(file, media_type=media)

    @app.post("/director/{vin}/manifest")
    async def post_manifest(vin: str, request: Request) -> JSONResponse:
        if caller(request) != vin:
            raise not_found(f"director/{vin}/manifest")
        body = await request.body()
        if len(body) > MAX_MANIFEST_BYTES:
            raise HTTPException(413, f"manifest over {MAX_MANIFEST_BYTES} bytes")
        try:
            outcome = backend.receive_manifest(vin, body)
        except OpenSDVError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse({"accepted": len(outcome.reports), "refused": outcome.refused})

    return app
