"""The team library's routes: who am I, the library, passages and pages,
folder changes, the audit log and users (see :mod:`app.service.team`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.service import team
from app.service.engine import Caller, Service


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FoldersRequest(_Body):
    """Folders (or files) on the server, as absolute paths."""

    paths: list[str] = Field(min_length=1, max_length=100)


class UserRequest(_Body):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["reader", "editor", "admin"] = "reader"  # keys.ROLES, spelled for a readable 400
    scopes: list[str] = Field(default_factory=list, max_length=100)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)


def add_team_routes(app: FastAPI, service: Service, caller: Callable[[Request], Caller]) -> None:
    """Register the team routes on ``app`` (every one needs a key when the service has auth)."""

    async def run(request: Request, fn: Callable[..., dict[str, Any]], *args: Any) -> JSONResponse:
        who = caller(request)
        return JSONResponse(await run_in_threadpool(fn, service, who, *args))

    @app.get("/v1/whoami", response_model=None)
    async def whoami(request: Request) -> JSONResponse:
        return await run(request, team.whoami)

    @app.get("/v1/library", response_model=None)
    async def library(request: Request) -> JSONResponse:
        return await run(request, team.library)

    @app.get("/v1/library/files", response_model=None)
    async def files(request: Request, folder: str | None = None) -> JSONResponse:
        return await run(request, team.files, folder)

    async def queued(request: Request, kind: str, paths: list[str]) -> JSONResponse:
        """A folder change, queued on the writer thread: 202 and the job to follow."""
        response = await run(request, team.change, kind, paths)
        response.status_code = 202
        return response

    @app.post("/v1/library/folders", response_model=None, status_code=202)
    async def add_folders(body: FoldersRequest, request: Request) -> JSONResponse:
        return await queued(request, "add", body.paths)

    @app.post("/v1/library/remove", response_model=None, status_code=202)
    async def remove_folders(body: FoldersRequest, request: Request) -> JSONResponse:
        return await queued(request, "remove", body.paths)

    @app.post("/v1/library/reindex", response_model=None, status_code=202)
    async def reindex(body: FoldersRequest, request: Request) -> JSONResponse:
        return await queued(request, "reindex", body.paths)

    @app.get("/v1/library/jobs/{job_id}", response_model=None)
    async def job(job_id: int, request: Request) -> JSONResponse:
        return await run(request, team.job, job_id)

    @app.get("/v1/passages/{chunk_id}", response_model=None)
    async def passage(chunk_id: str, request: Request) -> JSONResponse:
        return await run(request, team.passage, chunk_id)

    @app.get("/v1/pages", response_model=None)
    async def page(request: Request, path: str, page: int | None = None, part: str | None = None) -> JSONResponse:
        return await run(request, team.page, path, page, part)

    @app.get("/v1/audit", response_model=None)
    async def audit(request: Request, user: str | None = None, limit: int = 100) -> JSONResponse:
        return await run(request, team.audit, user, limit)

    @app.get("/v1/users", response_model=None)
    async def users(request: Request) -> JSONResponse:
        return await run(request, team.users)

    @app.post("/v1/users", response_model=None)
    async def create_user(body: UserRequest, request: Request) -> JSONResponse:
        response = await run(request, team.create_user, body.name, body.role, body.scopes, body.rpm, body.tpm)
        response.status_code = 201
        return response

    @app.delete("/v1/users/{name}", response_model=None)
    async def revoke_user(name: str, request: Request) -> JSONResponse:
        return await run(request, team.revoke_user, name)
