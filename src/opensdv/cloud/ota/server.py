"""``opensdv ota serve``: the back end's routes over HTTP.

Metadata and images are plain files, served with ``FileResponse`` (HTTP range requests included,
so a vehicle can resume an interrupted image download); manifests arrive by POST. The adapter only
translates: errors from the back end become 400/404 with their message.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse

from opensdv.cloud.ota.backend import MAX_MANIFEST_BYTES, OtaBackend
from opensdv.errors import OpenSDVError

__all__ = ["create_app"]


def create_app(backend: OtaBackend) -> FastAPI:
    app = FastAPI(title="OpenSDV OTA (Uptane director + image repository)", version="1")

    @app.get("/{path:path}", response_model=None)
    def get_file(path: str) -> FileResponse:
        file = backend.file(path)
        if file is None or not file.is_file():
            raise HTTPException(404, f"no such file: {path}")
        media = "application/json" if file.suffix == ".json" else "application/octet-stream"
        return FileResponse(file, media_type=media)

    @app.post("/director/{vin}/manifest")
    async def post_manifest(vin: str, request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_MANIFEST_BYTES:
            raise HTTPException(413, f"manifest over {MAX_MANIFEST_BYTES} bytes")
        try:
            outcome = backend.receive_manifest(vin, body)
        except OpenSDVError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse({"accepted": len(outcome.reports), "refused": outcome.refused})

    return app
