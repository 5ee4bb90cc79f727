"""The console's settings page: the effective configuration by environment variable, every secret masked
(app/services/effective_settings.py), and the connector's version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app import __version__
from app.console.web import ConsoleRuntime, Viewer, render
from app.services.effective_settings import effective_settings

router = APIRouter()

MAX_SEARCH_CHARS = 64


@router.get("/settings")
async def settings_page(
    request: Request,
    _session: Viewer,
    runtime: ConsoleRuntime,
    q: Annotated[str | None, Query(max_length=MAX_SEARCH_CHARS, description="Part of a variable's name")] = None,
) -> Response:
    views = effective_settings(runtime.settings)
    wanted = (q or "").strip().upper().replace("-", "_")
    shown = [view for view in views if wanted in view.variable] if wanted else views
    return render(
        request,
        "settings.html",
        {
            "title": "Settings",
            "settings": shown,
            "total": len(views),
            "q": q or "",
            "version": __version__,
            "database": runtime.db.url.describe(),
            "migration": runtime.head_revision,
            "app_env": runtime.settings.app_env,
        },
    )
