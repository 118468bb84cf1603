"""FastAPI with :class:`resque_compat.aio.AsyncResque`, opened and closed with the app.

REDIS_URL=redis://localhost:6379/0 uvicorn fastapi_shop.app:app
resque-compat work --import fastapi_shop.jobs --queues thumbnails
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from resque_compat.aio import AsyncResque


class ThumbnailRequest(BaseModel):
    image_id: int
    sizes: list[int] = [64, 256]


def create_app(redis_url: str | None = None, namespace: str | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncResque(redis_url or os.environ.get("REDIS_URL"), namespace=namespace) as resque:
            app.state.resque = resque
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/thumbnails", status_code=202)
    async def make_thumbnails(body: ThumbnailRequest, request: Request) -> dict[str, Any]:
        resque: AsyncResque = request.app.state.resque
        job_id = await resque.enqueue("thumbnails", "Media::Thumbnail", body.image_id, body.sizes, track=True)
        return {"job_id": job_id}

    @app.get("/jobs/{job_id}")
    async def job_status(job_id: str, request: Request) -> dict[str, Any]:
        resque: AsyncResque = request.app.state.resque
        record = await resque.status(job_id)
        if record is None:
            raise HTTPException(404, "unknown job")
        return {"job_id": job_id, "status": record.status}

    @app.get("/queues")
    async def queues(request: Request) -> dict[str, int]:
        resque: AsyncResque = request.app.state.resque
        return await resque.queue_sizes()

    return app


app = create_app()
