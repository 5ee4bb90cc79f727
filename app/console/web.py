"""What every console page shares: the templates, who is signed in, bounded forms with their CSRF check, flash
notices and the answers' security headers. The pages (app/console/pages/) are thin adapters over app/services, as
the routers and the CLI are."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer

from app import __version__
from app.console.session import COOKIE, ConsoleSession, SessionCodec
from app.runtime import Runtime

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
MAX_FORM_BYTES = 64 * 1024  # every console form but the CSV upload (which streams: app/console/pages/catalog.py)
MAX_FORM_FIELDS = 200
FLASH_COOKIE = "oms_console_flash"
PREFIX = "/admin"

# No CDN, no inline script: everything comes from the connector. Inline styles stay allowed for the SVG charts.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """No valid session: the page answers with the sign-in form (app/console/__init__.py)."""


class ConsoleRefusal(Exception):
    """A console request that cannot be served: rendered as an error page with ``status``."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def codec(request: Request) -> SessionCodec:
    """The session codec of this app (built once from the runtime's settings)."""
    found: SessionCodec | None = getattr(request.app.state, "console_codec", None)
    if found is None:
        found = SessionCodec(runtime_of(request).settings)
        request.app.state.console_codec = found
    return found


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _runtime(request: Request) -> Runtime:  # async: no worker-thread hop (app/deps.py says why)
    return runtime_of(request)


async def viewer(request: Request) -> ConsoleSession:
    """Any signed-in operator (read-only included); else the sign-in form."""
    session = codec(request).read(request.cookies.get(COOKIE))
    if session is None:
        raise SignInRequired
    request.state.console_session = session
    return session


Viewer = Annotated[ConsoleSession, Depends(viewer)]
ConsoleRuntime = Annotated[Runtime, Depends(_runtime)]


@dataclass(frozen=True)
class ConsoleForm:
    """A posted form of a signed-in operator who may change things, its CSRF token checked."""

    session: ConsoleSession
    fields: Mapping[str, list[str]]

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[-1] if values else default

    def get_all(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))


async def read_form(request: Request) -> dict[str, list[str]]:
    """An urlencoded form, bounded before it is parsed (MAX_FORM_BYTES, MAX_FORM_FIELDS, no NUL)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise ConsoleRefusal(413, "Form too large", f"a console form is at most {MAX_FORM_BYTES // 1024} KiB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ConsoleRefusal(413, "Form too large", f"a console form is at most {MAX_FORM_BYTES // 1024} KiB")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConsoleRefusal(400, "Unreadable form", f"the form could not be read: {exc}") from None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise ConsoleRefusal(422, "Invalid form", f"field {name[:40]!r} contains NUL")
        fields.setdefault(name, []).append(value)
    return fields


async def changer(request: Request, session: Viewer) -> ConsoleForm:
    """A state-changing post: the operator role (not read-only) and the session's CSRF token in ``csrf_token``."""
    fields = await read_form(request)
    given = fields.get("csrf_token", [None])[-1]
    if not session.csrf_matches(given):
        raise ConsoleRefusal(
            403, "Form expired or forged", "the form's CSRF token is missing or wrong: reload the page"
        )
    if not session.can_change:
        raise ConsoleRefusal(403, "Read-only", "signed in with the read-only token: this console changes nothing")
    return ConsoleForm(session=session, fields=fields)


Changer = Annotated[ConsoleForm, Depends(changer)]


def render(request: Request, template: str, context: Mapping[str, Any] | None = None, status: int = 200) -> Response:
    """A page of the console, with the session, the flash notice and the security headers."""
    session: ConsoleSession | None = getattr(request.state, "console_session", None)
    if session is None:  # an error page, say, answered before the page's own check: the nav still shows
        session = codec(request).read(request.cookies.get(COOKIE))
    notice = _take_flash(request)
    response = templates.TemplateResponse(
        request,
        template,
        {"session": session, "notice": notice, "version": __version__, "prefix": PREFIX, **(context or {})},
        status_code=status,
    )
    if notice is not None:
        response.delete_cookie(FLASH_COOKIE, path=PREFIX)
    secure_headers(response)
    return response


def secure_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(request: Request, url: str, notice: str | None = None, kind: str = "ok") -> Response:
    """After a post: 303 to ``url`` (a console path), carrying a one-time notice shown there."""
    if not url.startswith(PREFIX):
        url = PREFIX
    response = RedirectResponse(url, status_code=303)
    if notice is not None:
        signed = URLSafeSerializer(_flash_key(request), salt="flash").dumps({"text": notice[:500], "kind": kind})
        response.set_cookie(
            FLASH_COOKIE, signed, max_age=60, path=PREFIX, httponly=True, samesite="strict", secure=is_https(request)
        )
    return secure_headers(response)


def _take_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or len(raw) > 2048:
        return None
    try:
        data = URLSafeSerializer(_flash_key(request), salt="flash").loads(raw)
    except BadSignature:
        return None
    return data if isinstance(data, dict) else None


def _flash_key(request: Request) -> str:
    return codec(request).flash_key


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def sign_in_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{PREFIX}/login?next={quote(target, safe='')}"


def html_error(request: Request, refusal: ConsoleRefusal) -> HTMLResponse:
    response = render(request, "error.html", {"title": refusal.title, "detail": refusal.detail}, status=refusal.status)
    return response  # type: ignore[return-value]


# --- formatting, shared by every template -----------------------------------------------------------------------
def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            text = f"{seconds / size:.0f} {unit}"
            break
    else:
        text = f"{seconds:.0f} s"
    return f"in {text}" if future else f"{text} ago"


def fmt_ms(value: float | int | Decimal | None) -> str:
    if value is None:
        return "—"
    value = float(value)
    if value >= 60_000:
        return f"{value / 60_000:.1f} min"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def fmt_number(value: int | float | None) -> str:
    return "—" if value is None else f"{value:,}"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


# Status → (badge class, symbol): colour is never the only signal (a symbol and the word go with it).
STATUS_STYLES = {
    "succeeded": ("ok", "✓"),
    "delivered": ("ok", "✓"),
    "acknowledged": ("ok", "✓"),
    "done": ("ok", "✓"),
    "queued": ("info", "•"),
    "pending": ("info", "•"),
    "processing": ("info", "▶"),
    "running": ("info", "▶"),
    "sent": ("info", "→"),
    "waiting": ("warn", "‖"),
    "held": ("warn", "‖"),
    "retrying": ("warn", "↻"),
    "failed": ("bad", "✕"),
    "dead": ("bad", "☠"),
    "rejected": ("bad", "⊘"),
    "discarded": ("muted", "○"),
    "canceled": ("muted", "○"),
    "cancelled": ("muted", "○"),
    "pruned": ("muted", "○"),
}


def status_style(status: object) -> tuple[str, str]:
    return STATUS_STYLES.get(str(getattr(status, "value", status) or "").lower(), ("muted", "•"))


templates.env.filters.update(time=fmt_time, ago=fmt_ago, ms=fmt_ms, number=fmt_number, pretty_json=pretty_json)
templates.env.globals.update(status_style=status_style)
