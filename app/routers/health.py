"""/health — anonymous liveness and readiness probes."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from app.db import current_revision
from app.deps import RuntimeDep
from app.errors import StorageUnavailable
from app.routers.route import api_router

router = api_router(prefix="/health", tags=["health"])


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """The database answers and its schema is at the migration head (503 otherwise)."""
    try:
        async with runtime.db.connect() as connection:
            revision = await current_revision(connection)
    except StorageUnavailable as exc:
        return JSONResponse({"status": "unavailable", "database": exc.message}, status_code=503)
    except Exception as exc:  # e.g. no alembic_version table yet: not migrated
        return JSONResponse({"status": "unavailable", "database": "ok", "migration": str(exc)[:200]}, status_code=503)
    if revision != runtime.head_revision:
        return JSONResponse(
            {"status": "unavailable", "database": "ok", "migration": revision, "expected": runtime.head_revision},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok", "migration": revision})
